"""`kmsplan apply PATH...` / `kmsplan apply --plan FILE`: make live KMS match the manifests.

Plans, shows the plan, asks for `yes`, then runs the changes through the applier. Refuses
before its first write when:

- anything in the plan is blocked by the safety gate (exit 1; the message names each blocked
  change, why, and the flag or change that unblocks it — the same plan with `--detailed-exitcode`
  exits 3 from `kmsplan plan`);
- there is no approval: stdin is not a terminal and `--auto-approve` was not given (exit 1);
- `--plan FILE` was changed after `plan --out` saved it (its checksum), or is stale: live KMS
  changed since the plan was saved (exit 1, naming what);
- `--plan FILE` has a change the safety gate blocks when judged again now, against live KMS
  read again and with the gate flags given to apply — never those stored in the file.

Exit 0 when everything was applied (or there was nothing to do), 1 when any change failed —
with what was done and what was not; re-running apply converges.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from kmsplan.apply import (
    ApplyEvent,
    ApplyResult,
    ChangeStatus,
    EventKind,
    check_plan,
)
from kmsplan.audit import AuditLog
from kmsplan.errors import ExitCode, KmsplanError, RefusedError
from kmsplan.model import Stack
from kmsplan.options import aws_options, gate_from_kwargs, gate_options, lock_options
from kmsplan.plan.actions import ACTIONS, words_for
from kmsplan.plan.types import GateOptions, Plan
from kmsplan.render.terminal import terminal_safe

if TYPE_CHECKING:
    from kmsplan.run import AwsSettings, Run
    from kmsplan.run.stacks import StackOutcome, StackSource

CONVERGE_HINT = (
    "Re-run kmsplan apply to finish: every step is safe to repeat, and the next plan shows "
    "only what remains."
)

# The apply's default time budget (--timeout), in seconds. KMS quotas are shared with every
# caller in the account, so a busy account makes an apply slower, not failed; this is the
# only limit on how long it keeps going.
DEFAULT_TIMEOUT_SECONDS = 3600.0


@click.command("apply", short_help="Apply the plan to live KMS, behind the safety gate.")
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=True))
@click.option("--auto-approve", is_flag=True, help="Apply without asking for 'yes'.")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False),
    default=None,
    help=(
        "Apply a plan saved by `kmsplan plan --out`, if it is unchanged, live KMS still "
        "matches it and the gate, with this command's flags, blocks nothing."
    ),
)
@click.option(
    "--log",
    "log_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Append one JSON line per KMS API call to this file (no policies, no secrets).",
)
@click.option("--no-color", is_flag=True, help="Never colour the plan.")
@click.option(
    "--fail-fast",
    is_flag=True,
    help="Several stacks: apply them one after another and stop at the first that fails; "
    "refuse the whole run, before any change, if any stack fails to plan or is blocked.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Time budget of the apply: no call is started after it, and calls KMS keeps "
    "throttling (a busy account) are retried until then.",
)
@aws_options
@lock_options
@gate_options
def command(
    paths: tuple[str, ...],
    auto_approve: bool,
    plan_file: str | None,
    log_file: str | None,
    no_color: bool,
    fail_fast: bool,
    timeout: float,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    parallelism: int,
    lock: str | None,
    lock_timeout: int,
    **gate_flags: Any,
) -> int:
    """Apply the changes that make live KMS match the manifests in PATH... .

    Shows the plan and asks for 'yes' (--auto-approve skips the question; without a terminal
    it is required). Refuses the whole run, before any change, when the safety gate blocks
    anything in the plan.

    With --plan FILE (instead of PATH...), applies a plan saved by `kmsplan plan --out`: only
    if the file is unchanged (its checksum), live KMS still matches it, and the safety gate,
    run again against live KMS with the gate flags given to this command, blocks nothing.
    The flags and verdicts stored in the file do not count: a deletion needs --allow-delete
    here too.

    With a stack lock (lock: in the manifests, or --lock URL; a saved plan names none), the
    lock is taken before live KMS is read and held through the approval prompt until the last
    write; --lock-timeout SECONDS waits for a lock another run holds.

    Manifests of several stacks: every stack is planned (each under its own lock), the plans
    are shown and approved once, then the stacks are applied at the same time; a stack that
    fails to plan, is blocked or fails to apply does not stop the others, and the report says
    what was done in each. With --fail-fast, any stack that fails to plan or is blocked
    refuses the whole run, and the stacks are applied one after another, stopping at the
    first that fails.

    Exit codes: 0 applied (or nothing to do); 1 refused, or a change failed (in any stack).
    """
    from kmsplan.commands.plan import render, use_color
    from kmsplan.manifest import load_stacks
    from kmsplan.run import AwsSettings, Intent, LockOptions, check_region_name
    from kmsplan.run.session import read_saved_plans
    from kmsplan.run.stacks import loaded_sources, saved_sources

    gate = gate_from_kwargs(gate_flags)
    aws = AwsSettings(
        profile=profile, region=region, endpoint_url=endpoint_url, parallelism=parallelism
    )
    locking = LockOptions(url=lock, timeout=lock_timeout, command="apply")
    sources: list[StackSource]
    if plan_file is not None:
        if paths:
            raise click.UsageError("give either PATH... or --plan FILE, not both")
        saved = read_saved_plans(plan_file, aws, lock=locking)
        sources = saved_sources(plan_file, saved, aws, lock=locking)
    else:
        if not paths:
            raise click.UsageError("give the manifests to apply (PATH...) or --plan FILE")
        check_region_name(region)
        locking.check()
        stacks = load_stacks(paths)
        sources = loaded_sources(stacks, aws, intent=Intent.APPLY, lock=locking)
    if len(sources) > 1:
        return apply_several(
            sources,
            aws,
            gate,
            auto_approve=auto_approve,
            fail_fast=fail_fast,
            log_file=log_file,
            timeout=timeout,
            color=use_color(no_color=no_color),
        )

    # The run holds the stack lock from before it reads live state until the last write.
    with sources[0].open(None) as session:
        plan = session.plan(gate)
        click.echo(render(plan, "text", color=use_color(no_color=no_color)), nl=False)
        if not plan.has_changes:
            return int(ExitCode.OK)
        check_plan(plan)
        approve(auto_approve=auto_approve)
        result = run(plan, session, log_file=log_file, timeout=timeout)
    click.echo(terminal_safe(report(result)), err=not result.ok)
    return int(ExitCode.OK if result.ok else ExitCode.ERROR)


def apply_several(
    sources: Sequence[StackSource],
    aws: AwsSettings,
    gate: GateOptions,
    *,
    auto_approve: bool,
    fail_fast: bool,
    log_file: str | None,
    timeout: float,
    color: bool,
) -> int:
    """Plan, show, approve once, and apply several stacks; one report and one exit code."""
    from kmsplan.commands.plan import planning_line
    from kmsplan.render.run import render_text
    from kmsplan.run.stacks import open_stacks

    click.echo(planning_line([s.stack.name for s in sources]), err=True)

    with contextlib.ExitStack() as held:
        audit = None if log_file is None else held.enter_context(open_audit(log_file))
        # Every stack's lock is held from before its live read until its last write.
        runs = held.enter_context(open_stacks(sources, aws, gate))
        planned = runs.planned
        click.echo(render_text(planned, color=color), nl=False)
        failed = [o.stack.name for o in planned if o.failed]
        if fail_fast and failed:
            raise RefusedError(
                f"refusing to apply: --fail-fast, and {len(failed)} stack(s) cannot be applied "
                f"({', '.join(failed)}); nothing was changed in any stack"
            )
        if not runs.to_apply:
            return int(ExitCode.ERROR if failed else ExitCode.OK)
        approve(auto_approve=auto_approve)
        click.echo("", err=True)

        def apply_stack(stack: Stack, session: Run, plan: Plan, stop: threading.Event) -> Any:
            progress = Progress(total=len(plan.changes), prefix=f"{stack.name}: ")
            return session.apply(
                plan,
                on_event=progress.print,
                audit=None if audit is None else audit.for_stack(stack.name),
                timeout=timeout,
                stop=stop,
            )

        outcomes = runs.apply(apply_stack, fail_fast=fail_fast)
    text = several_report(outcomes)
    ok = not any(o.failed for o in outcomes)
    click.echo(terminal_safe(text), err=not ok)
    return int(ExitCode.OK if ok else ExitCode.ERROR)


@contextlib.contextmanager
def open_audit(log_file: str) -> Iterator[AuditLog]:
    """The audit log of ``--log FILE``, open for appending for the duration of the block."""
    try:
        with AuditLog.open(log_file) as audit:
            yield audit
    except OSError as exc:
        raise KmsplanError(f"cannot write the audit log {log_file}: {exc.strerror}") from None


def several_report(outcomes: Sequence[StackOutcome]) -> str:
    """What apply did in each stack, then the hint to converge if anything failed."""
    lines = [f"\nApply of {len(outcomes)} stacks:"]
    for o in outcomes:
        name = o.stack.name
        if o.result is not None:
            body = report(o.result, hint=False).strip("\n")
            lines.append(f"  {name}: " + body.replace("\n", "\n    "))
        elif o.error is not None:
            lines.append(f"  {name}: not applied: " + o.error.replace("\n", "\n    "))
        else:
            lines.append(f"  {name}: no changes")
    if any(o.result is not None and not o.result.ok for o in outcomes):
        lines.append(CONVERGE_HINT)
    return "\n".join(lines)


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def approve(*, auto_approve: bool) -> None:
    """Ask for exactly 'yes'; refuse without a terminal unless --auto-approve."""
    if auto_approve:
        return
    if not stdin_is_terminal():
        raise RefusedError(
            "refusing to apply without approval: stdin is not a terminal, so nobody can "
            "answer 'yes'; review the plan and re-run with --auto-approve. Nothing was changed"
        )
    click.echo("\nDo you want to apply these changes? Only 'yes' will be accepted.")
    answer = click.prompt("Enter a value", default="", show_default=False)
    if answer.strip() != "yes":
        raise RefusedError("apply cancelled: the answer was not 'yes'. Nothing was changed")


def run(
    plan: Plan,
    session: Run,
    *,
    log_file: str | None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> ApplyResult:
    """Apply `plan` in the run that planned it, printing progress on stderr."""
    progress = Progress(total=len(plan.changes))

    def apply(audit: AuditLog | None) -> ApplyResult:
        return session.apply(plan, on_event=progress.print, audit=audit, timeout=timeout)

    click.echo("", err=True)
    try:
        if log_file is None:
            return apply(None)
        with open_audit(log_file) as audit:
            return apply(audit)
    except KeyboardInterrupt:
        raise KmsplanError(
            "apply interrupted: no new call was started after the interrupt; the calls made "
            f"before it stand. {CONVERGE_HINT}"
        ) from None


class Progress:
    """The progress of an apply on stderr: a line per change start, retry and finish, each led
    by an ``[n/N]`` counter — n of the plan's N changes finished (done, failed or skipped)."""

    def __init__(self, *, total: int, prefix: str = "") -> None:
        self.total = total
        self.finished = 0
        self.prefix = prefix  # a run of several stacks: the stack's name

    def line(self, event: ApplyEvent) -> str:
        # The applier reports one event at a time (under its lock): a plain counter is safe.
        if event.kind is EventKind.FINISHED:
            self.finished += 1
        return f"{self.prefix}[{self.finished}/{self.total}] {progress_line(event)}"

    def print(self, event: ApplyEvent) -> None:
        click.echo(terminal_safe(self.line(event)), err=True)


def progress_line(event: ApplyEvent) -> str:
    change = event.change
    said = words_for(change.action, change.address)
    if event.kind is EventKind.STARTED:
        return f"{change.address}: {said.starting}..."
    if event.kind is EventKind.RETRYING:
        return f"{change.address}: {event.message}"
    outcome = event.outcome
    assert outcome is not None
    if outcome.status is ChangeStatus.DONE:
        suffix = f" [id={outcome.key_id}]" if outcome.key_id else ""
        finished = said.finished
        # A key scheduled for deletion still exists, recoverable, until its window ends.
        window = next(
            (
                call.params.get("PendingWindowInDays")
                for call in change.calls
                if call.operation == "ScheduleKeyDeletion"
            ),
            None,
        )
        if window:
            finished += f" in {window} days"
        return f"{change.address}: {finished}{suffix}"
    return outcome.describe()


def report(result: ApplyResult, *, hint: bool = True) -> str:
    """What apply did; with `hint`, how to finish when something failed (a run of several
    stacks gives it once, after every stack's report)."""
    counts = ", ".join(
        f"{result.count(action)} {info.applied}"
        for action, info in ACTIONS.items()
        if info.always_counted or result.count(action)
    )
    if result.ok:
        return f"\nApply complete: {counts}."
    lines = [f"\nApply failed: {counts}; these changes were not completed:"]
    for outcome in result.outcomes:
        if outcome.status is not ChangeStatus.DONE:
            lines.append(f"  {outcome.describe()}")
    if hint:
        lines.append(CONVERGE_HINT)
    return "\n".join(lines)
