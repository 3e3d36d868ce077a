"""Which changes wait for which, and which plans the applier refuses before any call."""

from __future__ import annotations

import pytest
from apply_plans import (
    ALLOW_DELETE,
    alias_create,
    call,
    change,
    create_key,
    grant_create,
    identity_tags,
    key_deletion,
    plan,
)

from kmsplan.apply import check_plan, dependencies
from kmsplan.errors import RefusedError
from kmsplan.plan.types import Action, Change, GateBlock, GateOptions, Resource, ref


def test_alias_and_grant_wait_for_the_key_they_refer_to() -> None:
    deps = dependencies(
        plan(
            create_key("orders"),
            alias_create("alias/orders", "orders"),
            grant_create("orders", "g"),
        )
    )
    assert deps == {
        "key.orders": (),
        "alias.alias/orders": ("key.orders",),
        "grant.orders.g": ("key.orders",),
    }


def test_changes_of_a_key_wait_for_its_own_update_even_without_a_reference() -> None:
    restore = change(
        "key.orders", Resource.KEY, Action.RESTORE, "orders", call("CancelKeyDeletion", KeyId="k1")
    )
    deps = dependencies(plan(restore, alias_create("alias/orders", "orders", target="k1")))
    assert deps["alias.alias/orders"] == ("key.orders",)


def test_key_deletion_waits_for_every_other_change_wherever_it_is_listed() -> None:
    deletion = key_deletion("old", "k-old")
    deps = dependencies(
        plan(
            deletion,
            create_key("orders"),
            alias_create("alias/orders", "orders"),
            key_deletion("older", "k-older"),
        )
    )
    assert deps["key.old"] == ("key.orders", "alias.alias/orders")
    assert deps["key.older"] == ("key.orders", "alias.alias/orders")
    assert deps["key.orders"] == ()


def disable(name: str, target: object = None, *, depends_on: tuple[str, ...] = ()) -> Change:
    target = ref(f"key.{name}") if target is None else target
    return change(
        f"key.{name}.disable",
        Resource.KEY,
        Action.UPDATE,
        name,
        call("DisableKey", KeyId=target),
        depends_on=depends_on,
    )


def test_trailing_disable_waits_for_the_key_and_every_grant_change_of_it() -> None:
    deps = dependencies(
        plan(
            create_key("orders"),
            alias_create("alias/orders", "orders"),
            grant_create("orders", "g"),
            grant_create("orders", "h"),
            disable("orders"),
            grant_create("other", "g", target="k-other"),
        )
    )
    # The aliases and grants wait for the key's own change, not for its disable.
    assert deps["alias.alias/orders"] == ("key.orders",)
    assert deps["grant.orders.g"] == ("key.orders",)
    assert deps["key.orders.disable"] == ("key.orders", "grant.orders.g", "grant.orders.h")


def test_trailing_disable_of_a_live_key_waits_for_its_grants_even_without_depends_on() -> None:
    revoke = change(
        "grant.orders.old",
        Resource.GRANT,
        Action.DELETE,
        "orders",
        call("RevokeGrant", KeyId="k1", GrantId="g-old"),
    )
    deps = dependencies(
        plan(
            disable("orders", "k1"),
            grant_create("orders", "g", target="k1"),
            revoke,
            key_deletion("old", "k-old"),
            gate=ALLOW_DELETE,
        )
    )
    assert deps["key.orders.disable"] == ("grant.orders.g", "grant.orders.old")
    assert deps["grant.orders.g"] == ()
    # A key deletion still waits for everything else, the disable included.
    assert deps["key.old"] == ("key.orders.disable", "grant.orders.g", "grant.orders.old")
    check_plan(
        plan(
            disable("orders", "k1"),
            grant_create("orders", "g", target="k1"),
            revoke,
        )
    )


def test_independent_keys_do_not_wait_for_each_other() -> None:
    deps = dependencies(plan(create_key("a"), create_key("b"), alias_create("alias/b", "b")))
    assert deps["key.b"] == ()
    assert deps["alias.alias/b"] == ("key.b",)


def test_depends_on_outside_the_plan_is_already_satisfied() -> None:
    alias = change(
        "alias.alias/x",
        Resource.ALIAS,
        Action.UPDATE,
        "x",
        call("UpdateAlias", AliasName="alias/x", TargetKeyId="k1"),
        depends_on=("key.gone",),
    )
    assert dependencies(plan(alias)) == {"alias.alias/x": ()}


def test_a_blocked_plan_is_refused_naming_the_change_the_reason_and_the_way_out() -> None:
    blocked = key_deletion("orders", "k1")
    blocked = type(blocked)(
        address=blocked.address,
        resource=blocked.resource,
        action=blocked.action,
        key=blocked.key,
        calls=blocked.calls,
        blocked=(
            GateBlock(
                rule="allow-delete",
                reason="deleting a key needs --allow-delete",
                unblock="re-run with --allow-delete",
            ),
        ),
    )
    with pytest.raises(RefusedError) as refused:
        check_plan(plan(create_key("a"), blocked))
    assert str(refused.value) == (
        "refusing to apply: 1 change(s) blocked by the safety gate; nothing was changed:\n"
        "  key.orders: deleting a key needs --allow-delete (to unblock: re-run with --allow-delete)"
    )


@pytest.mark.parametrize(
    ("bad_plan", "problem"),
    [
        (
            plan(change("key.a", Resource.KEY, Action.UPDATE, "a", call("DeleteKey", KeyId="k"))),
            "key.a: DeleteKey: not an operation kmsplan applies",
        ),
        (
            plan(alias_create("alias/a", "a")),
            "alias.alias/a: CreateAlias: refers to key.a, which creates no key",
        ),
        (
            plan(key_deletion("a", "k1")),
            "key.a: ScheduleKeyDeletion: key deletion without --allow-delete",
        ),
        (
            plan(key_deletion("a", "k1", window=31), gate=ALLOW_DELETE),
            "key.a: ScheduleKeyDeletion: pending window 31 is not 7-30 days",
        ),
        (
            plan(
                change(
                    "key.a",
                    Resource.KEY,
                    Action.CREATE,
                    "a",
                    call("CreateKey", Tags=identity_tags("a", stack="other")),
                )
            ),
            "key.a: CreateKey: the key would not carry its identity tags"
            " kmsplan:stack=payments and kmsplan:key",
        ),
        (
            plan(create_key("a", BypassPolicyLockoutSafetyCheck=True)),
            "key.a: CreateKey: BypassPolicyLockoutSafetyCheck without"
            " --bypass-policy-lockout-safety-check",
        ),
        (
            plan(
                change(
                    "alias.alias/x",
                    Resource.ALIAS,
                    Action.UPDATE,
                    "x",
                    call("UpdateAlias", AliasName="alias/x", TargetKeyId="k"),
                    depends_on=("alias.alias/y",),
                ),
                change(
                    "alias.alias/y",
                    Resource.ALIAS,
                    Action.UPDATE,
                    "y",
                    call("UpdateAlias", AliasName="alias/y", TargetKeyId="k"),
                    depends_on=("alias.alias/x",),
                ),
            ),
            "the changes' dependencies form a cycle",
        ),
        (
            plan(
                change(
                    "key.a.disable",
                    Resource.KEY,
                    Action.UPDATE,
                    "a",
                    call("DisableKey", KeyId="k"),
                    call("TagResource", KeyId="k", Tags=[]),
                )
            ),
            "key.a.disable: a key's trailing disable makes only DisableKey",
        ),
    ],
)
def test_malformed_plans_are_refused_before_any_call(bad_plan: object, problem: str) -> None:
    with pytest.raises(RefusedError) as refused:
        check_plan(bad_plan)
    assert str(refused.value) == (
        f"refusing to apply a malformed plan; nothing was changed:\n  {problem}"
    )


def test_bypass_is_accepted_when_the_run_allows_it() -> None:
    check_plan(
        plan(
            create_key("a", BypassPolicyLockoutSafetyCheck=True),
            gate=GateOptions(bypass_policy_lockout_safety_check=True),
        )
    )


def test_a_reference_to_a_created_key_is_accepted() -> None:
    check_plan(plan(create_key("a", call("EnableKeyRotation", KeyId=ref("key.a")))))
