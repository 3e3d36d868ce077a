"""Lint runs: one stack, or several each on its own, a failure of one never hiding the others.

Each stack is linted with its own keys, ``account:`` and the run's `LintConfig`. With live
policies (`lint --live`), each stack is opened on its own run (`open_loaded`): its own role,
Region guard, identity and account guard; the stacks are read at the same time, within the
run's `Budget` as `plan` reads them. A stack that fails to open or to read is reported with
its error and the others are linted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kmsplan.errors import ExitCode, KmsplanError
from kmsplan.lint.engine import fails, lint_stack
from kmsplan.lint.finding import Finding, Severity
from kmsplan.lint.rule import LintConfig
from kmsplan.model import Stack
from kmsplan.run.clients import AwsSettings, Budget
from kmsplan.run.guards import Intent
from kmsplan.run.session import open_loaded
from kmsplan.run.stacks import each


@dataclass(frozen=True, slots=True, kw_only=True)
class LintOutcome:
    """What one stack of a lint run came to: its findings, or the error that stopped it."""

    stack: Stack
    findings: tuple[Finding, ...] = ()
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def lint_one(
    stack: Stack, *, config: LintConfig, aws: AwsSettings | None, budget: Budget | None = None
) -> list[Finding]:
    """`stack`'s findings. With `aws`, the keys' live policies are read too, in the stack's
    own run; its errors (a refused account, an unreachable endpoint) are raised."""
    if aws is None:
        return lint_stack(stack, config=config)
    with open_loaded(stack, aws, intent=Intent.LINT, budget=budget) as run:
        resolved, live_policies = run.live_policies()
        account_id = run.identity.account_id
    return lint_stack(resolved, live_policies=live_policies, config=config, account_id=account_id)


def lint_each(
    stacks: Sequence[Stack], *, config: LintConfig, aws: AwsSettings | None
) -> list[LintOutcome]:
    """Lint every stack of `stacks`; an error ends that stack only. Outcomes in the order of
    `stacks`."""
    budget = None if aws is None else Budget(aws)

    def one(stack: Stack) -> LintOutcome:
        try:
            findings = lint_one(stack, config=config, aws=aws, budget=budget)
        except KmsplanError as exc:
            return LintOutcome(stack=stack, error=exc.render())
        return LintOutcome(stack=stack, findings=tuple(findings))

    return each(one, stacks, 1 if aws is None else aws.parallelism)


def lint_exit_code(outcomes: Sequence[LintOutcome], threshold: Severity | None) -> ExitCode:
    """1 if any stack failed or any stack's unsuppressed findings reach `threshold` (None:
    findings never fail the run); else 0."""
    if any(o.failed for o in outcomes):
        return ExitCode.ERROR
    findings = [f for o in outcomes for f in o.findings]
    return ExitCode.ERROR if fails(findings, threshold) else ExitCode.OK
