"""The progress lines `kmsplan apply` prints on stderr, one per change start and finish, each
with an [n/N] counter of the changes finished."""

from __future__ import annotations

from kmsplan.apply import ApplyEvent, ChangeStatus, EventKind
from kmsplan.apply.result import ChangeOutcome
from kmsplan.commands.apply import Progress, progress_line
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


def _key_change(address: str, key: str) -> Change:
    return Change(
        address=address,
        resource=Resource.KEY,
        action=Action.UPDATE,
        key=key,
        calls=(ApiCall(operation="DisableKey", params={"KeyId": "k-1"}),),
    )


def test_a_trailing_disable_reads_as_disabling_then_disabled() -> None:
    change = _key_change("key.orders.disable", "orders")
    assert progress_line(ApplyEvent(kind=EventKind.STARTED, change=change)) == (
        "key.orders.disable: disabling..."
    )
    assert _finished(change) == "key.orders.disable: disabled"


def test_every_line_counts_the_changes_finished_out_of_the_plan() -> None:
    first, second = _key_change("key.a", "a"), _key_change("key.b", "b")
    failed = ChangeOutcome(
        address="key.b",
        action=Action.UPDATE,
        status=ChangeStatus.FAILED,
        failed_operation="DisableKey",
        error_code="DisabledException",
        error_message="no",
        calls_not_done=("DisableKey",),
    )
    done = ChangeOutcome(address="key.a", action=Action.UPDATE, status=ChangeStatus.DONE)
    progress = Progress(total=2)
    lines = [
        progress.line(ApplyEvent(kind=EventKind.STARTED, change=first)),
        progress.line(ApplyEvent(kind=EventKind.STARTED, change=second)),
        progress.line(ApplyEvent(kind=EventKind.RETRYING, change=first, message="retrying")),
        progress.line(ApplyEvent(kind=EventKind.FINISHED, change=first, outcome=done)),
        progress.line(ApplyEvent(kind=EventKind.FINISHED, change=second, outcome=failed)),
    ]
    assert lines == [
        "[0/2] key.a: updating...",
        "[0/2] key.b: updating...",
        "[0/2] key.a: retrying",
        "[1/2] key.a: updated",
        "[2/2] key.b: FAILED at DisableKey: DisabledException: no (done: none; not done: "
        "DisableKey)",
    ]
