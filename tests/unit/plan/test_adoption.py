"""Adoption without AWS: which `adopt:` blocks adopt, which are refused (and how the plan
says so), the fingerprint that covers them, and what the applier accepts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from builders import (
    ACCOUNT,
    NOW,
    REGION,
    admin_policy,
    desired_key,
    grant,
    live_key,
    live_state,
    stack,
)

from kmsplan.apply import check_plan
from kmsplan.errors import RefusedError
from kmsplan.model import (
    TAG_KEY,
    TAG_PROTECTION,
    TAG_STACK,
    TAG_WINDOW,
    AdoptTarget,
    Key,
    KeyState,
    LiveState,
    Stack,
)
from kmsplan.plan import planfile
from kmsplan.plan.differ import diff
from kmsplan.plan.types import Action, ApiCall, Change, GateOptions, Plan, Resource
from kmsplan.run.planning import findings_for_changed_keys

OWNERSHIP = (TAG_STACK, TAG_KEY, TAG_PROTECTION, TAG_WINDOW)
KEY_ID = "0f5e1c52-8a3b-4c1e-9d7a-2b6f3e4d5c6a"


def unowned(key: str, **changes: Any) -> Key:
    """A key made outside kmsplan: no kmsplan tags; its foreign grant is an EBS one."""
    return live_key(
        desired_key(key, **changes),
        key_id=KEY_ID,
        omit_tags=OWNERSHIP,
        foreign_grants=[grant("ebs-volume")],
    )


def adopting(*keys: Key, target: AdoptTarget, **kw: Any) -> LiveState:
    return dataclasses.replace(live_state(*keys, **kw), adoptions=(target,))


def plan_of(desired: Stack, live: LiveState) -> Plan:
    return diff(desired, live, GateOptions(), now=NOW)


def test_an_adoption_is_one_tag_resource_when_the_block_says_what_the_key_is() -> None:
    declared = desired_key("orders", adopt=KEY_ID, policy=admin_policy(), aliases=["alias/o"])
    key = unowned("orders", policy=admin_policy(), aliases=["alias/o"])
    live = adopting(
        target=AdoptTarget(name="orders", ref=KEY_ID, key_id=KEY_ID, key=key),
        aliases={"alias/o": KEY_ID},
    )
    plan = plan_of(stack(declared), live)
    (change,) = plan.changes
    assert (change.address, change.action) == ("key.orders", Action.ADOPT)
    (call,) = change.calls
    assert call.operation == "TagResource"
    assert call.params["Tags"] == [
        {"TagKey": TAG_PROTECTION, "TagValue": "true"},
        {"TagKey": TAG_WINDOW, "TagValue": "30"},
        {"TagKey": TAG_KEY, "TagValue": "orders"},
        {"TagKey": TAG_STACK, "TagValue": "payments"},
    ]
    assert plan.count(Action.ADOPT) == 1 and not plan.blocked
    # Its existing grant stays foreign: listed, never revoked.
    assert any("grant ebs-volume on key.orders" in note for note in plan.unmanaged)
    check_plan(plan)


def test_the_fingerprint_covers_what_adopt_named_and_the_key_it_adopts() -> None:
    key = unowned("orders")
    target = AdoptTarget(name="orders", ref=KEY_ID, key_id=KEY_ID, key=key)
    before = planfile.fingerprint(adopting(target=target))
    drifted = dataclasses.replace(target, key=dataclasses.replace(key, description="changed"))
    after = planfile.fingerprint(adopting(target=drifted))
    assert planfile.stale_objects(before, after) == ["adopt.orders.metadata"]
    moved = dataclasses.replace(target, key_id="other", key=None)
    assert "adopt.orders" in planfile.stale_objects(
        before,
        planfile.fingerprint(adopting(target=moved)),
    )


def test_a_pending_deletion_key_is_adopted_with_a_restore_before_its_tags() -> None:
    key = live_key(
        desired_key("old"), key_id=KEY_ID, omit_tags=OWNERSHIP, state=KeyState.PENDING_DELETION
    )
    live = adopting(target=AdoptTarget(name="old", ref=KEY_ID, key_id=KEY_ID, key=key))
    (change,) = plan_of(stack(desired_key("old", adopt=KEY_ID)), live).changes
    assert change.action is Action.ADOPT
    assert [c.operation for c in change.calls] == ["CancelKeyDeletion", "EnableKey", "TagResource"]
    assert "declared, but the live key is pending deletion" in change.reason


@pytest.mark.parametrize(
    ("target", "rule_words"),
    [
        (AdoptTarget(name="orders", ref=KEY_ID), "no such key in account"),
        (
            AdoptTarget(name="orders", ref="alias/aws/ebs", key_id=KEY_ID, aws_managed=True),
            "is an AWS managed key",
        ),
        (
            AdoptTarget(
                name="orders", ref=KEY_ID, key_id=KEY_ID, owner_stack="other", owner_key="x"
            ),
            "is key.x of stack other",
        ),
        (
            AdoptTarget(name="orders", ref=f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{KEY_ID}"),
            f"Region eu-west-1; stack payments is planned in account {ACCOUNT}, Region {REGION}",
        ),
    ],
)
def test_a_refused_adoption_is_blocked_with_no_calls_and_no_aliases_or_grants(
    target: AdoptTarget, rule_words: str
) -> None:
    declared = desired_key("orders", adopt=target.ref, aliases=["alias/o"], grants=[grant("g")])
    plan = plan_of(stack(declared), adopting(target=target))
    (change,) = plan.changes
    assert (change.action, change.calls) == (Action.ADOPT, ())
    (block,) = change.blocked
    assert block.rule == "adopt" and rule_words in block.reason and block.unblock
    with pytest.raises(RefusedError, match="refusing to apply"):
        check_plan(plan)


def test_an_adoption_that_would_not_tag_the_key_is_refused_by_the_applier() -> None:
    bad = Change(
        address="key.orders",
        resource=Resource.KEY,
        action=Action.ADOPT,
        key="orders",
        calls=(ApiCall(operation="TagResource", params={"KeyId": KEY_ID, "Tags": []}),),
    )
    untag = dataclasses.replace(bad, action=Action.RELEASE)
    plan = Plan(stack="payments", account_id=ACCOUNT, region=REGION, changes=(bad,))
    with pytest.raises(RefusedError, match="would not carry its identity tags"):
        check_plan(plan)
    with pytest.raises(RefusedError, match="a release makes only UntagResource"):
        check_plan(dataclasses.replace(plan, changes=(untag,)))


def test_adopt_naming_another_key_than_the_tagged_one_plans_nothing_else_on_the_key() -> None:
    tagged = live_key(desired_key("orders", aliases=["alias/old"]), key_id="tagged-key")
    target = AdoptTarget(name="orders", ref=KEY_ID, key_id=KEY_ID, key=unowned("orders"))
    live = adopting(tagged, target=target, aliases={"alias/old": "tagged-key"})
    plan = plan_of(stack(desired_key("orders", adopt=KEY_ID, grants=[grant("g")])), live)
    (change,) = plan.changes
    assert (change.action, change.calls) == (Action.ADOPT, ())
    (block,) = change.blocked
    assert block.rule == "adopt"
    assert block.reason == (
        f"key.orders: adopt: {KEY_ID}: names key {KEY_ID}, but key tagged-key already carries "
        "this block's tags (kmsplan:key=orders)"
    )
    assert block.unblock.startswith("remove adopt: (key tagged-key is this block's key)")


def test_the_live_policy_of_a_key_being_adopted_is_linted_like_the_stacks_own() -> None:
    stale = admin_policy()
    stale["Statement"].append(
        {
            "Sid": "Gone",
            "Effect": "Allow",
            "Principal": {"AWS": "AROAEXAMPLEUNIQUEID01"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        }
    )
    key = unowned("orders", policy=stale)
    declared = stack(desired_key("orders", adopt=KEY_ID, policy=admin_policy()))
    live = adopting(target=AdoptTarget(name="orders", ref=KEY_ID, key_id=KEY_ID, key=key))
    plan = plan_of(declared, live)
    findings = findings_for_changed_keys(declared, live, plan)
    assert [f.rule for f in findings if f.rule == "KMS016"] == ["KMS016"]
