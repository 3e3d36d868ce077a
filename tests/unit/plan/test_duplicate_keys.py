"""Several live keys carrying one stack and name (two applies raced): the plan keeps the key
the aliases and grants use, else the oldest, and releases the others visibly — tagged
kmsplan:duplicate-of, ownership tags removed — and never deletes them."""

from __future__ import annotations

import dataclasses
from typing import Any

from builders import NOW, desired_key, grant, live_key, live_state, stack

from kmsplan.model import TAG_DUPLICATE_OF, TAG_KEY, TAG_STACK, Deletion, Key, KeyState
from kmsplan.plan.differ import diff, match_keys
from kmsplan.plan.reasons import Why
from kmsplan.plan.types import Action, GateOptions, Plan
from kmsplan.render import json as json_render
from kmsplan.render import text

A = "aaaaaaaa-0000-0000-0000-000000000000"
B = "bbbbbbbb-0000-0000-0000-000000000000"
C = "cccccccc-0000-0000-0000-000000000000"
OLD = "2026-01-01T00:00:00+00:00"
NEWER = "2026-01-01T00:00:01.5+00:00"
NEWEST = "2026-01-02T00:00:00+00:00"


def dup(key: Key, key_id: str, created: str, **changes: Any) -> Key:
    return dataclasses.replace(live_key(key, key_id=key_id, **changes), created=created)


def plan_for(desired: Any, live: Any) -> Plan:
    return diff(desired, live, GateOptions(), now=NOW)


def only(plan: Plan, address: str) -> Any:
    found = [c for c in plan.changes if c.address == address]
    assert len(found) == 1, [c.address for c in plan.changes]
    return found[0]


def released_ids(plan: Plan) -> list[str]:
    return [
        dict(call.params)["KeyId"]
        for c in plan.changes
        if c.action is Action.RELEASE
        for call in c.calls
        if call.operation == "UntagResource"
    ]


def test_the_key_the_aliases_and_grants_use_is_kept_even_if_it_is_younger() -> None:
    declared = desired_key("orders", aliases=["alias/orders"], grants=[grant("app")])
    unused_older = dup(declared, A, OLD, aliases=(), grants=())
    used_younger = dup(declared, B, NEWEST)

    plan = plan_for(
        stack(declared), live_state(unused_older, used_younger, aliases={"alias/orders": B})
    )

    release = only(plan, "key.orders.duplicates")
    assert release.action is Action.RELEASE
    assert [(c.operation, dict(c.params)) for c in release.calls] == [
        ("TagResource", {"KeyId": A, "Tags": [{"TagKey": TAG_DUPLICATE_OF, "TagValue": B}]}),
        ("UntagResource", {"KeyId": A, "TagKeys": [TAG_STACK, TAG_KEY]}),
    ]
    assert release.reason.codes == (Why.DUPLICATE_KEYS,)
    assert str(release.reason) == (
        f"other live keys carry this stack and name ({A}), as when two applies race: {B} is "
        "kept (the key the aliases and grants use); the others are released — their ownership "
        "tags removed, tagged kmsplan:duplicate-of with the kept key's id — and never deleted"
    )
    assert [c.address for c in plan.changes] == ["key.orders.duplicates"]


def test_unused_duplicates_keep_the_oldest_and_release_every_other() -> None:
    declared = desired_key("orders")
    keys = [dup(declared, C, NEWER), dup(declared, B, NEWEST), dup(declared, A, OLD)]

    [match] = match_keys(stack(declared), live_state(*keys))
    plan = plan_for(stack(declared), live_state(*keys))

    assert match.live is not None and match.live.key_id == A
    assert released_ids(plan) == [C, B]  # oldest first
    assert "(the oldest)" in str(only(plan, "key.orders.duplicates").reason)


def test_no_surplus_key_is_ever_scheduled_for_deletion_even_when_undeclared() -> None:
    # The name is gone from the manifest: the kept key goes through the gate as always, the
    # surplus one is released, never deleted.
    gone = desired_key("orders", deletion=Deletion(protected=False))
    keys = (dup(gone, A, OLD), dup(gone, B, NEWER))

    plan = diff(
        stack(desired_key("other")),
        live_state(*keys),
        GateOptions(allow_delete=True, ignore_usage=True),
        now=NOW,
    )

    deleted = [
        dict(call.params)["KeyId"]
        for c in plan.changes
        for call in c.calls
        if call.operation == "ScheduleKeyDeletion"
    ]
    assert deleted == [A]
    assert released_ids(plan) == [B]
    # Every key of the stack leaves it (one deleted, one released): the mass-deletion rule
    # sees through the release.
    assert [b.rule for c in plan.blocked for b in c.blocked] == ["mass-deletion"]


def test_a_declared_alias_on_the_surplus_key_moves_to_the_kept_one() -> None:
    declared = desired_key("orders", aliases=["alias/a", "alias/b"])
    kept = dup(declared, A, OLD, aliases=("alias/a", "alias/b"))
    surplus = dup(declared, B, NEWER, aliases=("alias/b",))

    plan = plan_for(
        stack(declared), live_state(kept, surplus, aliases={"alias/a": A, "alias/b": B})
    )

    move = only(plan, "alias.alias/b")
    assert [(c.operation, dict(c.params)) for c in move.calls] == [
        ("UpdateAlias", {"AliasName": "alias/b", "TargetKeyId": A})
    ]
    assert released_ids(plan) == [B]


def test_an_undeclared_alias_on_the_surplus_key_is_left_with_it() -> None:
    # Each key is used once (a grant, an alias): the older one is kept.
    declared = desired_key("orders", grants=[grant("app")])
    kept = dup(declared, A, OLD)
    surplus = dup(declared, B, NEWER, grants=(), aliases=("alias/someone-elses",))

    plan = plan_for(stack(declared), live_state(kept, surplus, aliases={"alias/someone-elses": B}))

    assert [c.address for c in plan.changes] == ["key.orders.duplicates"]


def test_a_duplicate_pending_deletion_is_left_alone_not_released() -> None:
    declared = desired_key("orders")
    live = dup(declared, A, NEWER)
    pending = dup(declared, B, OLD, state=KeyState.PENDING_DELETION)

    plan = plan_for(stack(declared), live_state(live, pending))

    assert plan.changes == ()
    assert any(
        f"an earlier key {B} with this name is pending deletion" in n for n in plan.unmanaged
    )


def test_the_release_is_shown_in_the_text_plan_and_counted_in_json() -> None:
    declared = desired_key("orders")
    plan = plan_for(stack(declared), live_state(dup(declared, A, OLD), dup(declared, B, NEWER)))

    shown = text.render(plan, color=False)
    document = json_render.render(plan)

    assert "« key.orders.duplicates will be released" in shown
    assert f"duplicate {B}: " in shown
    assert f"kmsplan:duplicate-of={A}" in shown
    assert '"release": 1' in document


def test_the_applier_refuses_a_release_that_tags_anything_but_duplicate_of() -> None:
    import dataclasses as dc

    import pytest

    from kmsplan.apply import check_plan
    from kmsplan.errors import RefusedError
    from kmsplan.plan.types import ApiCall

    declared = desired_key("orders")
    plan = plan_for(stack(declared), live_state(dup(declared, A, OLD), dup(declared, B, NEWER)))
    check_plan(plan)  # the release as planned passes
    [release] = plan.changes
    retag = ApiCall(
        operation="TagResource",
        params={"KeyId": B, "Tags": [{"TagKey": TAG_STACK, "TagValue": "other"}]},
    )
    forged = dc.replace(plan, changes=(dc.replace(release, calls=(retag,)),))

    with pytest.raises(RefusedError, match="a release makes only UntagResource"):
        check_plan(forged)


def test_a_saved_plan_with_a_release_reads_back_the_same() -> None:
    from kmsplan.plan import planfile

    declared = desired_key("orders")
    plan = plan_for(stack(declared), live_state(dup(declared, A, OLD), dup(declared, B, NEWER)))

    again = planfile.loads(planfile.dumps(plan))

    assert again.changes == plan.changes
    assert again.changes[0].address.step is not None
    assert again.changes[0].reason.codes == (Why.DUPLICATE_KEYS,)
