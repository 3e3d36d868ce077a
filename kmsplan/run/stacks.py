"""Several stacks in one run: each planned on its own, a failure of one never hiding the others.

Each stack gets its own run (`open_loaded`): its own role, Region guard, identity, account
guard, stack lock, live read, gate and fingerprint. The stacks are planned one after another
(each with the whole ``--parallelism`` budget for its own reads); a stack that fails to plan is
reported with its error and the next one is planned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kmsplan.errors import ExitCode, KmsplanError
from kmsplan.model import Stack
from kmsplan.plan.types import GateOptions, Plan
from kmsplan.run.clients import AwsSettings
from kmsplan.run.guards import Intent
from kmsplan.run.session import open_loaded


@dataclass(frozen=True, slots=True, kw_only=True)
class StackOutcome:
    """What one stack of a run came to: its plan, or the error that stopped it."""

    stack: Stack
    plan: Plan | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.plan is None


def plan_each(
    stacks: Sequence[Stack],
    aws: AwsSettings,
    gate: GateOptions,
    *,
    now: datetime | None = None,
) -> list[StackOutcome]:
    """Plan every stack of `stacks`, in order; an error ends that stack only."""
    outcomes: list[StackOutcome] = []
    for stack in stacks:
        try:
            with open_loaded(stack, aws, intent=Intent.PLAN) as run:
                outcomes.append(StackOutcome(stack=stack, plan=run.plan(gate, now=now)))
        except KmsplanError as exc:
            outcomes.append(StackOutcome(stack=stack, error=exc.render()))
    return outcomes


def run_exit_code(outcomes: Sequence[StackOutcome], *, detailed: bool) -> ExitCode:
    """1 if any stack failed; else, with `detailed`, 3 if anything is blocked, 2 if any stack
    has changes; else 0."""
    plans = [o.plan for o in outcomes if o.plan is not None]
    if len(plans) < len(outcomes):
        return ExitCode.ERROR
    if not detailed:
        return ExitCode.OK
    if any(p.blocked for p in plans):
        return ExitCode.BLOCKED
    return ExitCode.CHANGES if any(p.has_changes for p in plans) else ExitCode.OK
