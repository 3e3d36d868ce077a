"""The progress lines `kmsplan apply` prints on stderr, one per change start and finish."""

from __future__ import annotations

from kmsplan.apply import ApplyEvent, ChangeStatus, EventKind
from kmsplan.apply.result import ChangeOutcome
from kmsplan.commands.apply import progress_line
from kmsplan.plan.types import Action, ApiCall, Change, Resource


def _finished(change: Change) -> str:
    outcome = ChangeOutcome(address=change.address, action=change.action, status=ChangeStatus.DONE)
    return progress_line(ApplyEvent(kind=EventKind.FINISHED, change=change, outcome=outcome))


def test_a_key_deletion_reads_as_scheduled_with_its_window_not_as_deleted() -> None:
    change = Change(
        address="key.old",
        resource=Resource.KEY,
        action=Action.DELETE,
        key="old",
        calls=(
            ApiCall(
                operation="ScheduleKeyDeletion", params={"KeyId": "k-1", "PendingWindowInDays": 7}
            ),
        ),
    )
    assert _finished(change) == "key.old: scheduled for deletion in 7 days"


def test_an_alias_deletion_reads_as_deleted() -> None:
    change = Change(
        address="alias.alias/x",
        resource=Resource.ALIAS,
        action=Action.DELETE,
        key="old",
        calls=(ApiCall(operation="DeleteAlias", params={"AliasName": "alias/x"}),),
    )
    assert _finished(change) == "alias.alias/x: deleted"
