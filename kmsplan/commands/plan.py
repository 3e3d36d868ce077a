"""`kmsplan plan PATH...`: show the ordered changes that would make live KMS match the
manifests, and which of them the safety gate blocks."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from kmsplan.errors import ExitCode, KmsplanError
from kmsplan.options import (
    aws_options,
    gate_from_kwargs,
    gate_options,
    lock_options,
    paths_argument,
)
from kmsplan.plan.types import GateOptions, Plan

if TYPE_CHECKING:
    from kmsplan.model import Stack
    from kmsplan.run import AwsSettings, LockOptions

FORMATS = ("text", "json", "markdown")


@click.command("plan", short_help="Show the changes that make live KMS match the manifests.")
@paths_argument
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for programs (versioned schema), markdown for PR comments.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help=(
        "Save the plan, with a fingerprint of the live state and a checksum, for "
        "`kmsplan apply --plan` (several stacks: one file for the run)."
    ),
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when there are changes, 3 when the safety gate blocks any of them.",
)
@click.option("--no-color", is_flag=True, help="Never colour the text output.")
@aws_options
@lock_options
@gate_options
def command(
    paths: tuple[str, ...],
    output_format: str,
    out: str | None,
    detailed_exitcode: bool,
    no_color: bool,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    parallelism: int,
    lock: str | None,
    lock_timeout: int,
    **gate_flags: Any,
) -> int:
    """Plan the changes that make live KMS match the manifests in PATH... .

    With --out, the stack lock (lock: in the manifests, or --lock URL) is held while live KMS
    is read; a plain plan reads without it.

    Manifests of several stacks: each stack is planned on its own; --format json prints one
    run document and --out saves one file for the run, refused (nothing written) when a
    stack failed to plan.

    Exit codes: 0 success; 1 error; with --detailed-exitcode, 2 when there are changes and 3
    when the safety gate blocks any of them.
    """
    from kmsplan.manifest import load_stacks
    from kmsplan.plan import planfile
    from kmsplan.run import AwsSettings, Intent, LockOptions, check_region_name
    from kmsplan.run.session import open_loaded

    gate = gate_from_kwargs(gate_flags)
    aws = AwsSettings(
        profile=profile, region=region, endpoint_url=endpoint_url, parallelism=parallelism
    )
    check_region_name(region)
    stacks = load_stacks(paths)
    locking = (
        LockOptions(url=lock, timeout=lock_timeout, command="plan --out")
        if out is not None
        else None
    )
    if len(stacks) > 1:
        return plan_several(
            stacks,
            aws,
            gate,
            output_format=output_format,
            out=out,
            lock=locking,
            detailed=detailed_exitcode,
            color=use_color(no_color=no_color),
        )
    if locking is not None:
        locking.check()
    with open_loaded(stacks[0], aws, intent=Intent.PLAN, lock=locking) as session:
        plan = session.plan(gate)
    click.echo(render(plan, output_format, color=use_color(no_color=no_color)), nl=False)
    if out is not None:
        planfile.write(out, plan)
        click.echo(f"Saved the plan to {out}.", err=True)
    return int(exit_code(plan, detailed=detailed_exitcode))


def plan_several(
    stacks: Sequence[Stack],
    aws: AwsSettings,
    gate: GateOptions,
    *,
    output_format: str,
    out: str | None,
    lock: LockOptions | None,
    detailed: bool,
    color: bool,
) -> int:
    """Plan each of several stacks on its own; one report and one exit code for the run.
    With `out`, each stack's lock (`lock`) is held while it is read, and the run is saved as
    one file — only when every stack was planned."""
    from kmsplan.plan import planfile
    from kmsplan.render.json import render_run
    from kmsplan.render.run import render_markdown, render_text
    from kmsplan.run.stacks import plan_each, run_exit_code

    if lock is not None:
        lock.check()
    click.echo(planning_line([s.name for s in stacks]), err=True)
    outcomes = plan_each(stacks, aws, gate, lock=lock)
    if output_format == "json":
        report = render_run(outcomes)
    elif output_format == "markdown":
        report = render_markdown(outcomes)
    else:
        report = render_text(outcomes, color=color)
    click.echo(report, nl=False)
    if out is not None:
        failed = [o.stack.name for o in outcomes if o.plan is None]
        if failed:
            raise KmsplanError(
                f"not saving the run to {out}: {len(failed)} of {len(outcomes)} stacks failed "
                f"to plan ({', '.join(failed)}), and a saved run covers every stack; fix them "
                "and plan again, or save each stack's plan on its own. Nothing was written"
            )
        planfile.write_run(out, [o.plan for o in outcomes if o.plan is not None])
        click.echo(f"Saved the plans of {len(outcomes)} stacks to {out}.", err=True)
    return int(run_exit_code(outcomes, detailed=detailed))


def planning_line(names: Sequence[str]) -> str:
    """What a run of several stacks says on stderr before it reads anything: the stacks it
    found (a mistyped ``stack:`` is one of them)."""
    from kmsplan.render.terminal import one_line

    return f"Planning {len(names)} stacks: {one_line(', '.join(names))}."


def render(plan: Plan, output_format: str, *, color: bool) -> str:
    if output_format == "json":
        from kmsplan.render import json as json_render

        return json_render.render(plan)
    if output_format == "markdown":
        from kmsplan.render import markdown

        return markdown.render(plan)
    from kmsplan.render import text

    return text.render(plan, color=color)


def use_color(*, no_color: bool) -> bool:
    """Colour only on a terminal, never with --no-color or NO_COLOR (https://no-color.org:
    any non-empty value)."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def exit_code(plan: Plan, *, detailed: bool) -> ExitCode:
    if not detailed:
        return ExitCode.OK
    if plan.blocked:
        return ExitCode.BLOCKED
    return ExitCode.CHANGES if plan.has_changes else ExitCode.OK
