"""What an apply did: one outcome per change, and the progress events emitted on the way."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from kmsplan.plan.types import Action, Address, Change, Step


class ChangeStatus(str, enum.Enum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # a change it depends on failed or was skipped: nothing was called


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeOutcome:
    address: str
    action: Action
    status: ChangeStatus
    # Operations that took effect (or were found already in effect), in order.
    calls_done: tuple[str, ...] = ()
    # Operations of this change that were not made (the failed one first, if any).
    calls_not_done: tuple[str, ...] = ()
    failed_operation: str = ""
    error_code: str = ""
    error_message: str = ""
    # For SKIPPED: the failed changes upstream that caused the skip.
    skipped_because: tuple[str, ...] = ()
    # The key a CreateKey of this change created or adopted.
    key_id: str | None = None

    def describe(self) -> str:
        """One line for a terminal: what happened to this change."""
        if self.status is ChangeStatus.DONE:
            return f"{self.address}: {self.action.value} done"
        if self.status is ChangeStatus.SKIPPED:
            why = ", ".join(self.skipped_because)
            return f"{self.address}: skipped (depends on failed {why})"
        done = ", ".join(self.calls_done) or "none"
        not_done = ", ".join(self.calls_not_done) or "none"
        return (
            f"{self.address}: FAILED at {self.failed_operation}: {self.error_code}: "
            f"{self.error_message} (done: {done}; not done: {not_done})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    outcomes: tuple[ChangeOutcome, ...] = ()  # in plan order

    @property
    def ok(self) -> bool:
        return all(o.status is ChangeStatus.DONE for o in self.outcomes)

    def with_status(self, status: ChangeStatus) -> tuple[ChangeOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is status)

    def count(self, action: Action) -> int:
        """Changes of this action that were applied. As in the plan's summary (`Plan.count`),
        a key's trailing disable is part of changing that key: it counts only when the key
        had no change of its own in the run."""
        addresses = {o.address for o in self.outcomes}

        def is_step_of_a_changed_key(address: str) -> bool:
            parsed = Address.parse(address)
            return parsed.step is Step.DISABLE and parsed.owner in addresses

        return sum(
            1
            for o in self.outcomes
            if o.action is action
            and o.status is ChangeStatus.DONE
            and not is_step_of_a_changed_key(o.address)
        )

    @property
    def created_keys(self) -> Mapping[str, str]:
        """Address of each key change -> the key id it created or adopted."""
        return {o.address: o.key_id for o in self.outcomes if o.key_id}

    def outcome(self, address: str) -> ChangeOutcome | None:
        for o in self.outcomes:
            if o.address == address:
                return o
        return None


class EventKind(str, enum.Enum):
    STARTED = "started"
    FINISHED = "finished"  # see the outcome's status: done, failed or skipped
    # waiting out KMS eventual consistency or an ambiguous answer, or throttled by KMS
    RETRYING = "retrying"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyEvent:
    kind: EventKind
    change: Change
    outcome: ChangeOutcome | None = None
    message: str = ""

    @property
    def address(self) -> str:
        return self.change.address
