"""`released:`: kmsplan stops managing a key by removing its tags, and changes nothing else."""

from __future__ import annotations

from builders import (
    NOW,
    desired_key,
    grant,
    live_key,
    live_state,
    never_used,
    stack,
)

from kmsplan.model import (
    TAG_KEY,
    TAG_PROTECTION,
    TAG_STACK,
    TAG_WINDOW,
    KeyState,
    LiveState,
    Stack,
)
from kmsplan.plan.differ import diff, release_change
from kmsplan.plan.gate import recheck
from kmsplan.plan.types import Action, Address, GateOptions, Plan
from kmsplan.render import text

GATE = GateOptions()


def plan_for(desired_stack: Stack, live: LiveState, gate: GateOptions = GATE) -> Plan:
    return diff(desired_stack, live, gate, now=NOW)


def test_a_released_key_is_untagged_and_nothing_else() -> None:
    archive = live_key(
        desired_key("archive", aliases=["alias/archive"], grants=[grant("reader")]),
        extra_tags={"team": "data"},
    )
    orders = live_key(desired_key("orders"))
    plan = plan_for(
        stack(desired_key("orders"), released=("archive",)), live_state(orders, archive)
    )
    (change,) = plan.changes
    assert change.address == "key.archive"
    assert change.action is Action.RELEASE
    assert [(c.operation, dict(c.params)) for c in change.calls] == [
        (
            "UntagResource",
            {
                "KeyId": archive.key_id,
                "TagKeys": [TAG_PROTECTION, TAG_WINDOW, TAG_KEY, TAG_STACK],
            },
        )
    ]
    assert str(change.reason).startswith("listed in released:")
    assert not change.blocked
    assert plan.count(Action.RELEASE) == 1
    # Its kmsplan grant stays, listed as no longer managed; its alias is not deleted.
    assert any(
        "grant kmsplan/reader on key.archive" in note and "no longer managed" in note
        for note in plan.unmanaged
    )
    assert "1 to release" in text.render(plan, color=False)


def test_release_needs_no_gate_flag_and_is_not_a_mass_deletion() -> None:
    only = live_key(desired_key("archive"))
    plan = plan_for(stack(released=("archive",)), live_state(only))
    assert [c.action for c in plan.changes] == [Action.RELEASE]
    assert plan.blocked == ()


def test_deleting_every_other_key_while_releasing_one_is_still_a_mass_deletion() -> None:
    doomed = live_key(desired_key("orders"), protected=False)
    kept = live_key(desired_key("archive"))
    gate = GateOptions(allow_delete=True, ignore_usage=True)
    plan = diff(
        stack(released=("archive",)),
        live_state(doomed, kept, last_usage={"orders": never_used()}),
        gate,
        now=NOW,
    )
    deletion = next(c for c in plan.changes if c.action is Action.DELETE)
    assert [b.rule for b in deletion.blocked] == ["mass-deletion"]
    release = next(c for c in plan.changes if c.action is Action.RELEASE)
    assert release.blocked == ()


def test_a_released_name_no_live_key_carries_is_a_warning_not_a_change() -> None:
    plan = plan_for(
        stack(desired_key("orders"), released=("gone",)),
        live_state(live_key(desired_key("orders"))),
    )
    assert plan.changes == ()
    assert (
        "released: gone: no live key of stack payments carries this name (released already?); "
        "the entry can be removed"
    ) in plan.warnings


def test_a_released_key_pending_deletion_is_left_as_it_is() -> None:
    pending = live_key(desired_key("archive"), state=KeyState.PENDING_DELETION)
    plan = plan_for(stack(released=("archive",)), live_state(pending))
    assert plan.changes == ()
    assert any("released but pending deletion" in note for note in plan.unmanaged)


def test_an_alias_moving_off_a_released_key_is_an_ordinary_move() -> None:
    archive = live_key(desired_key("archive", aliases=["alias/shared"]))
    orders = live_key(desired_key("orders"))
    desired = stack(desired_key("orders", aliases=["alias/shared"]), released=("archive",))
    plan = plan_for(desired, live_state(orders, archive))
    moved = next(c for c in plan.changes if c.address == "alias.alias/shared")
    assert [c.operation for c in moved.calls] == ["UpdateAlias"]
    assert moved.blocked == ()


def test_release_change_can_remove_more_tags_under_its_own_address() -> None:
    key = live_key(desired_key("orders"), extra_tags={"kmsplan:lock": "run-1"})
    change = release_change(key, extra_tags=("kmsplan:other",), address=Address.of_key("orders"))
    (call,) = change.calls
    assert call.params["TagKeys"] == sorted(
        [TAG_KEY, "kmsplan:lock", "kmsplan:other", TAG_PROTECTION, TAG_STACK, TAG_WINDOW]
    )
    assert change.address == "key.orders"


def test_apply_time_recheck_still_counts_a_release_as_leaving_the_stack() -> None:
    doomed = live_key(desired_key("orders"), protected=False)
    kept = live_key(desired_key("archive"))
    gate = GateOptions(allow_delete=True, ignore_usage=True)
    live = live_state(doomed, kept, last_usage={"orders": never_used()})
    plan = diff(stack(released=("archive",)), live, gate, now=NOW)
    rechecked = recheck(plan.changes, stack=plan.stack, live=live, gate=gate, now=NOW)
    deletion = next(c for c in rechecked if c.action is Action.DELETE)
    assert [b.rule for b in deletion.blocked] == ["mass-deletion"]
    release = next(c for c in rechecked if c.action is Action.RELEASE)
    assert release.blocked == ()
