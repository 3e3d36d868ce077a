"""Replicas in the plan (pure): their own addresses and changes, placed in their Regions,
ordered primary -> replica -> the replica's aliases, and gated like keys."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kmsplan.model import (
    TAG_KEY,
    TAG_PROTECTION,
    TAG_STACK,
    TAG_WINDOW,
    AliasTarget,
    Key,
    KeyState,
    Placement,
    Replica,
    replica_usage_name,
)
from kmsplan.plan.differ import diff
from kmsplan.plan.types import Action, Address, GateOptions, Resource, Step
from tests.builders import (
    ACCOUNT,
    NOW,
    REGION,
    STACK,
    admin_policy,
    desired_key,
    key_id_for,
    live_key,
    live_state,
    stack,
    unused,
)

EU, AP = "eu-west-1", "ap-southeast-2"
ALLOW = GateOptions(allow_delete=True, ignore_usage=True)


def orders(**kw: Any) -> Key:
    policy = admin_policy()
    replicas = kw.pop(
        "replicas",
        (
            Replica(region=AP, aliases=("alias/orders",), policy=policy),
            Replica(region=EU, aliases=("alias/orders", "alias/orders-eu"), policy=policy),
        ),
    )
    return desired_key(
        "orders",
        multi_region=True,
        aliases=["alias/orders"],
        policy=policy,
        replicas=replicas,
        **kw,
    )


def live_replica(replica: Replica, *, protected: bool = True) -> Replica:
    tags = {
        TAG_STACK: STACK,
        TAG_KEY: "orders",
        TAG_PROTECTION: "true" if protected else "false",
        TAG_WINDOW: "30",
        **dict(replica.tags),
    }
    return dataclasses.replace(
        replica,
        state=KeyState.ENABLED,
        live_tags=tuple(sorted(tags.items())),
        placement=Placement(account_id=ACCOUNT, region=replica.region),
    )


def live_with_replicas(d: Key, *, protected: bool = True) -> Any:
    replicas = tuple(live_replica(r, protected=protected) for r in d.replicas)
    key = live_key(
        d,
        protected=protected,
        replicas=replicas,
        primary_region=REGION,
        replica_regions=tuple(r.region for r in replicas),
    )
    state = live_state(key)
    regional = {
        r.region: tuple(AliasTarget(name=a, target_key_id=key.key_id) for a in r.aliases)
        for r in replicas
    }
    return dataclasses.replace(state, regional_aliases=regional)


@pytest.mark.parametrize(
    ("address", "resource", "key", "region"),
    [
        (Address.of_replica("orders", EU), Resource.REPLICA, "orders", EU),
        (Address.of_alias("alias/orders", EU), Resource.ALIAS, None, EU),
        (Address.of_alias("alias/orders"), Resource.ALIAS, None, None),
    ],
)
def test_replica_and_regional_alias_addresses_parse_back(
    address: Address, resource: Resource, key: str | None, region: str | None
) -> None:
    parsed = Address.parse(str(address))
    assert (parsed.resource, parsed.key, parsed.region) == (resource, key, region)
    assert str(Address.of_replica("orders", EU)) == "replica.orders.eu-west-1"
    assert str(Address.of_alias("alias/orders", EU)) == "alias.alias/orders@eu-west-1"


def test_a_new_multi_region_key_is_created_then_replicated_then_aliased_in_each_region() -> None:
    plan = diff(stack(orders()), live_state(), GateOptions(), now=NOW)

    by_address = {c.address: c for c in plan.changes}
    order = [str(c.address) for c in plan.changes]
    eu = by_address["replica.orders.eu-west-1"]
    assert eu.resource is Resource.REPLICA and eu.action is Action.CREATE
    assert eu.placement == Placement(account_id=ACCOUNT, region=EU)
    (replicate,) = eu.calls
    assert replicate.operation == "ReplicateKey"
    assert replicate.params["KeyId"] == {"$ref": "key.orders"}
    assert replicate.params["ReplicaRegion"] == EU
    tags = {t["TagKey"]: t["TagValue"] for t in replicate.params["Tags"]}
    assert tags[TAG_STACK] == STACK and tags[TAG_KEY] == "orders"
    assert eu.depends_on == ("key.orders",)
    alias = by_address["alias.alias/orders-eu@eu-west-1"]
    assert alias.placement == Placement(account_id=ACCOUNT, region=EU)
    assert "replica.orders.eu-west-1" in alias.depends_on
    assert (
        order.index("key.orders")
        < order.index("replica.orders.eu-west-1")
        < order.index("alias.alias/orders-eu@eu-west-1")
    )
    # The primary's own alias stays in the home Region.
    assert by_address["alias.alias/orders"].placement is None
    assert not plan.blocked


def test_replicas_that_match_plan_nothing() -> None:
    d = orders()
    plan = diff(stack(d), live_with_replicas(d), GateOptions(), now=NOW)
    assert plan.changes == ()


def test_a_replica_differing_from_its_declaration_is_updated_in_its_region() -> None:
    d = orders()
    live = live_with_replicas(d)
    drifted = dataclasses.replace(
        live.keys[0],
        replicas=tuple(
            dataclasses.replace(r, description="old", enabled=False) if r.region == EU else r
            for r in live.keys[0].replicas
        ),
    )
    plan = diff(stack(d), dataclasses.replace(live, keys=(drifted,)), GateOptions(), now=NOW)

    (change,) = plan.changes
    assert (change.address, change.action) == ("replica.orders.eu-west-1", Action.UPDATE)
    assert [c.operation for c in change.calls] == ["EnableKey", "UpdateKeyDescription"]
    assert change.placement == Placement(account_id=ACCOUNT, region=EU)


def test_a_protected_replica_no_longer_declared_is_blocked() -> None:
    d = orders()
    live = live_with_replicas(d)
    only_eu = dataclasses.replace(d, replicas=tuple(r for r in d.replicas if r.region == EU))

    plan = diff(stack(only_eu), live, ALLOW, now=NOW)

    deletion = next(c for c in plan.changes if c.address == "replica.orders.ap-southeast-2")
    assert deletion.action is Action.DELETE
    assert deletion.calls[0].operation == "ScheduleKeyDeletion"
    assert deletion.placement == Placement(account_id=ACCOUNT, region=AP)
    assert [b.rule for b in deletion.blocked] == ["deletion-protection"]
    alias = next(c for c in plan.changes if c.address == "alias.alias/orders@ap-southeast-2")
    assert alias.action is Action.DELETE and not alias.blocked


def test_an_unprotected_replica_needs_allow_delete_and_its_own_usage() -> None:
    d = orders()
    live = live_with_replicas(d, protected=False)
    only_eu = dataclasses.replace(d, replicas=tuple(r for r in d.replicas if r.region == EU))

    blocked = diff(stack(only_eu), live, GateOptions(), now=NOW)
    recent = dataclasses.replace(live, last_usage={replica_usage_name("orders", AP): unused(3)})
    used = diff(stack(only_eu), recent, GateOptions(allow_delete=True), now=NOW)
    idle = dataclasses.replace(live, last_usage={replica_usage_name("orders", AP): unused()})
    passes = diff(stack(only_eu), idle, GateOptions(allow_delete=True), now=NOW)

    def rules(plan: Any) -> list[str]:
        change = next(c for c in plan.changes if c.address == "replica.orders.ap-southeast-2")
        return [b.rule for b in change.blocked]

    assert rules(blocked) == ["allow-delete", "usage"]
    assert rules(used) == ["usage"]
    assert rules(passes) == []


def test_removing_a_primary_with_replicas_in_service_is_blocked_with_the_reason() -> None:
    d = orders()
    gate = dataclasses.replace(ALLOW, allow_delete_all=True)
    plan = diff(stack(), live_with_replicas(d, protected=False), gate, now=NOW)

    key = next(c for c in plan.changes if c.address == "key.orders")
    assert [b.rule for b in key.blocked] == ["replicas"]
    block = next(b for b in key.blocked if b.rule == "replicas")
    assert block.reason == (
        "key.orders is a multi-Region primary key with replicas in ap-southeast-2, eu-west-1; "
        "KMS deletes a primary only after its replicas"
    )
    replica_deletions = [c for c in plan.changes if c.resource is Resource.REPLICA]
    assert len(replica_deletions) == 2 and not any(c.blocked for c in replica_deletions)


def test_moving_the_region_to_a_replica_plans_update_primary_region_first() -> None:
    d = orders(replicas=())
    key = live_key(d, primary_region=EU, replica_regions=(REGION,))
    plan = diff(stack(d), live_state(key), GateOptions(), now=NOW)

    (move,) = [c for c in plan.changes if c.address.step is Step.PRIMARY_REGION]
    assert move.address == "key.orders.primary-region"
    assert move.calls[0].operation == "UpdatePrimaryRegion"
    assert move.calls[0].params == {"KeyId": key_id_for("orders"), "PrimaryRegion": REGION}
    assert move.placement == Placement(account_id=ACCOUNT, region=EU)
    assert plan.changes[0] is move


def test_each_new_replica_costs_a_key_month() -> None:
    plan = diff(stack(orders()), live_state(), GateOptions(), now=NOW)

    replica_lines = [line for line in plan.cost if "new replica" in line.description]
    assert [(line.description, line.monthly_usd) for line in replica_lines] == [
        ("replica.orders.ap-southeast-2: new replica", 1.0),
        ("replica.orders.eu-west-1: new replica", 1.0),
    ]


def test_a_saved_plan_goes_stale_when_a_replica_or_its_regional_alias_changes() -> None:
    from kmsplan.plan.planfile import fingerprint, stale_objects

    d = orders()
    live = live_with_replicas(d)
    key = live.keys[0]
    drifted_replica = dataclasses.replace(
        live,
        keys=(
            dataclasses.replace(
                key,
                replicas=tuple(
                    dataclasses.replace(r, description="edited") if r.region == EU else r
                    for r in key.replicas
                ),
            ),
        ),
    )
    moved_alias = dataclasses.replace(
        live,
        regional_aliases={
            **live.regional_aliases,
            AP: (AliasTarget(name="alias/orders", target_key_id="other"),),
        },
    )

    assert stale_objects(fingerprint(live), fingerprint(drifted_replica)) == [
        "replica.orders.eu-west-1"
    ]
    assert stale_objects(fingerprint(live), fingerprint(moved_alias)) == [
        "alias.alias/orders@ap-southeast-2"
    ]
