"""The gate at apply time for a saved plan (`gate.recheck`): the file's verdicts and flags do
not count; the calls are judged against live state read again, with apply's flags."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from builders import (
    ACCOUNT,
    NOW,
    desired_key,
    grant,
    key_id_for,
    live_key,
    live_state,
    lockout_policy,
    never_used,
    stack,
    unused,
    user_policy,
)

from kmsplan.model import LiveState
from kmsplan.plan.differ import diff
from kmsplan.plan.gate import recheck
from kmsplan.plan.types import (
    Action,
    ApiCall,
    Change,
    GateBlock,
    GateOptions,
    Plan,
    Resource,
    ref,
)

NO_FLAGS = GateOptions()
ALLOW = GateOptions(allow_delete=True, ignore_usage=True)
FOREIGN = "0000aaaa-1111-2222-3333-444455556666"


def live() -> LiveState:
    return dataclasses.replace(
        live_state(
            live_key(desired_key("kept", aliases=["alias/kept"])),
            live_key(desired_key("gone", aliases=["alias/gone"]), protected=False),
            live_key(desired_key("guarded"), protected=True),
            aliases={
                "alias/kept": key_id_for("kept"),
                "alias/gone": key_id_for("gone"),
                "alias/foreign": FOREIGN,
            },
        ),
        last_usage={"gone": unused(), "guarded": unused()},
    )


def saved_plan(gate: GateOptions = NO_FLAGS) -> Plan:
    """The plan `plan --out` saves: gone deleted, a new key with an alias, a grant."""
    desired = stack(
        desired_key("kept", aliases=["alias/kept"], grants=[grant("app")]),
        desired_key("guarded"),
        desired_key("new", aliases=["alias/new"]),
    )
    return diff(desired, live(), gate, now=NOW)


def rules(changes: tuple[Change, ...]) -> dict[str, list[str]]:
    return {c.address: sorted(b.rule for b in c.blocked) for c in changes if c.blocked}


def rechecked(changes: tuple[Change, ...], gate: GateOptions = NO_FLAGS) -> dict[str, Any]:
    return rules(recheck(changes, stack="payments", live=live(), gate=gate, now=NOW))


def with_call(change: Change, index: int, **params: Any) -> Change:
    calls = list(change.calls)
    calls[index] = ApiCall(
        operation=calls[index].operation, params={**calls[index].params, **params}
    )
    return dataclasses.replace(change, calls=tuple(calls))


def change_at(plan: Plan, address: str) -> Change:
    return next(c for c in plan.changes if c.address == address)


@pytest.mark.parametrize(
    "gate",
    [GateOptions(), ALLOW, GateOptions(allow_delete=True)],
    ids=["no-flags", "allow-delete-ignore-usage", "allow-delete"],
)
def test_an_untouched_plan_gets_the_verdicts_it_was_planned_with(gate: GateOptions) -> None:
    plan = saved_plan(gate)
    assert rechecked(plan.changes, gate) == rules(plan.changes)


def test_the_files_verdicts_do_not_count_either_way() -> None:
    plan = saved_plan()
    assert rules(plan.changes) == {"key.gone": ["allow-delete"]}
    cleared = tuple(dataclasses.replace(c, blocked=()) for c in plan.changes)
    assert rechecked(cleared) == {"key.gone": ["allow-delete"]}
    planted = tuple(
        dataclasses.replace(c, blocked=(GateBlock(rule="x", reason="r", unblock="u"),))
        for c in plan.changes
    )
    assert rechecked(planted, ALLOW) == {}


def test_a_deletion_swapped_to_a_protected_key_is_blocked_with_every_flag() -> None:
    plan = saved_plan(ALLOW)
    gone = change_at(plan, "key.gone")
    index = [c.operation for c in gone.calls].index("ScheduleKeyDeletion")
    swapped = with_call(gone, index, KeyId=key_id_for("guarded"))
    everything = GateOptions(
        allow_delete=True,
        allow_delete_all=True,
        ignore_usage=True,
        unused_for_days=0,
        allow_alias_takeover=True,
        bypass_policy_lockout_safety_check=True,
    )
    assert rechecked((swapped,), everything) == {"key.gone": ["deletion-protection"]}


def test_a_call_addressing_a_key_outside_the_stack_is_blocked() -> None:
    plan = saved_plan(ALLOW)
    gone = change_at(plan, "key.gone")
    index = [c.operation for c in gone.calls].index("ScheduleKeyDeletion")
    swapped = with_call(gone, index, KeyId=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{FOREIGN}")
    blocked = recheck((swapped,), stack="payments", live=live(), gate=ALLOW, now=NOW)
    assert sorted(b.rule for b in blocked[0].blocked) == ["deletion-protection", "outside-stack"]
    assert any(
        b.reason
        == (
            f"key.gone: ScheduleKeyDeletion: KeyId is key 'arn:aws:kms:us-east-1:{ACCOUNT}:key/"
            f"{FOREIGN}', which is not a key of stack payments"
        )
        for b in blocked[0].blocked
    )
    grant_change = next(c for c in plan.changes if c.resource is Resource.GRANT)
    moved = with_call(grant_change, 0, KeyId=FOREIGN)
    assert rechecked((moved,)) == {grant_change.address: ["outside-stack"]}


def test_a_reference_to_a_key_the_plan_does_not_create_is_blocked() -> None:
    plan = saved_plan()
    alias = change_at(plan, "alias.alias/new")
    dangling = with_call(alias, 0, TargetKeyId=ref("key.nothing"))
    assert rechecked((dangling,)) == {"alias.alias/new": ["outside-stack"]}
    assert rechecked(tuple(c for c in plan.changes if c.address.endswith("new"))) == {}


def test_an_alias_takeover_is_judged_on_the_aliass_live_target_not_the_files() -> None:
    update = Change(
        address="alias.alias/foreign",
        resource=Resource.ALIAS,
        action=Action.UPDATE,
        key="kept",
        # The file claims the alias is on a key of the stack; KMS says otherwise.
        before={"target_key_id": key_id_for("gone"), "target_key": "gone"},
        calls=(
            ApiCall(
                operation="UpdateAlias",
                params={"AliasName": "alias/foreign", "TargetKeyId": key_id_for("kept")},
            ),
        ),
    )
    assert rechecked((update,)) == {"alias.alias/foreign": ["alias-takeover"]}
    assert rechecked((update,), GateOptions(allow_alias_takeover=True)) == {}
    # Moving it by deleting and creating it again (a target of another key type) is a takeover.
    move = dataclasses.replace(
        update,
        calls=(
            ApiCall(operation="DeleteAlias", params={"AliasName": "alias/foreign"}),
            ApiCall(
                operation="CreateAlias",
                params={"AliasName": "alias/foreign", "TargetKeyId": key_id_for("kept")},
            ),
        ),
    )
    assert rechecked((move,)) == {"alias.alias/foreign": ["alias-takeover"]}
    assert rechecked((move,), GateOptions(allow_alias_takeover=True)) == {}
    # Only deleting it is never something a plan does to an alias outside the stack.
    delete = dataclasses.replace(update, calls=move.calls[:1])
    assert rechecked((delete,), GateOptions(allow_alias_takeover=True)) == {
        "alias.alias/foreign": ["outside-stack"]
    }
    own = dataclasses.replace(
        delete, calls=(ApiCall(operation="DeleteAlias", params={"AliasName": "alias/gone"}),)
    )
    assert rechecked((own,)) == {}


@pytest.mark.parametrize(
    ("window", "blocked"), [(6, True), (7, False), (30, False), (31, True), ("7", True)]
)
def test_the_deletion_window_is_judged_as_it_will_be_sent(window: Any, blocked: bool) -> None:
    gone = change_at(saved_plan(ALLOW), "key.gone")
    index = [c.operation for c in gone.calls].index("ScheduleKeyDeletion")
    expected = {"key.gone": ["window"]} if blocked else {}
    assert rechecked((with_call(gone, index, PendingWindowInDays=window),), ALLOW) == expected


def test_usage_and_mass_deletion_come_from_the_live_read_and_apply_flags() -> None:
    gone = change_at(saved_plan(ALLOW), "key.gone")
    recent = dataclasses.replace(live(), last_usage={"gone": unused(days=2)})
    judged = recheck(
        (gone,), stack="payments", live=recent, gate=GateOptions(allow_delete=True), now=NOW
    )
    assert [b.rule for b in judged[0].blocked] == ["usage"]
    only_gone = live_state(
        live_key(desired_key("gone"), protected=False), last_usage={"gone": never_used()}
    )
    judged = recheck(
        (gone,), stack="payments", live=only_gone, gate=GateOptions(allow_delete=True), now=NOW
    )
    assert [b.rule for b in judged[0].blocked] == ["mass-deletion"]


def test_a_lockout_policy_slipped_into_a_saved_plan_is_blocked() -> None:
    kept = Change(
        address="key.kept",
        resource=Resource.KEY,
        action=Action.UPDATE,
        key="kept",
        calls=(
            ApiCall(
                operation="PutKeyPolicy",
                params={
                    "KeyId": key_id_for("kept"),
                    "PolicyName": "default",
                    "Policy": json.dumps(lockout_policy()),
                },
            ),
        ),
    )
    assert rechecked((kept,), ALLOW) == {"key.kept": ["lockout"]}
    fine = with_call(kept, 0, Policy=json.dumps(user_policy(f"arn:aws:iam::{ACCOUNT}:role/x")))
    assert rechecked((fine,), ALLOW) == {}


def test_relabelling_a_change_does_not_hide_it_from_the_rules() -> None:
    only_gone = live_state(
        live_key(desired_key("gone"), protected=False), last_usage={"gone": never_used()}
    )
    gone = change_at(saved_plan(ALLOW), "key.gone")
    as_update = dataclasses.replace(gone, action=Action.UPDATE)
    judged = recheck((as_update,), stack="payments", live=only_gone, gate=ALLOW, now=NOW)
    assert [b.rule for b in judged[0].blocked] == ["mass-deletion"]
    assert judged[0].action is Action.UPDATE  # what is shown is the file's; only judged anew

    takeover = Change(
        address="key.kept",
        resource=Resource.KEY,
        action=Action.UPDATE,
        key="kept",
        calls=(
            ApiCall(
                operation="UpdateAlias",
                params={"AliasName": "alias/foreign", "TargetKeyId": key_id_for("kept")},
            ),
        ),
    )
    assert rechecked((takeover,)) == {"key.kept": ["alias-takeover"]}
