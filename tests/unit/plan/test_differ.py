"""The differ: desired + live -> ordered changes with their exact KMS calls. No AWS here:
desired and live states are built by hand (tests/builders.py)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from builders import (
    ACCOUNT,
    NOW,
    admin_policy,
    converged,
    desired_key,
    grant,
    key_id_for,
    live_key,
    live_state,
    never_used,
    stack,
    user_policy,
)

from kmsplan.model import (
    TAG_WINDOW,
    Deletion,
    Grant,
    GrantConstraints,
    KeyState,
    LiveState,
    Rotation,
    Stack,
)
from kmsplan.plan.differ import diff, match_keys
from kmsplan.plan.types import Action, Change, GateOptions, Plan, Resource, ref

OPEN_GATE = GateOptions(allow_delete=True, ignore_usage=True)


DEFAULT_GATE = GateOptions()


def plan_for(desired: Stack, live: LiveState, gate: GateOptions = DEFAULT_GATE) -> Plan:
    return diff(desired, live, gate, now=NOW)


def change(plan: Plan, address: str) -> Change:
    found = [c for c in plan.changes if c.address == address]
    assert len(found) == 1, [c.address for c in plan.changes]
    return found[0]


def ops(c: Change) -> list[str]:
    return [call.operation for call in c.calls]


def empty_live() -> LiveState:
    return live_state()


# ---- creates ---------------------------------------------------------------------------------


def test_new_stack_plans_key_then_alias_then_grant_with_references() -> None:
    orders = desired_key(
        "orders",
        description="Orders table",
        aliases=["alias/payments/orders"],
        rotation=Rotation(enabled=True, period_days=180),
        tags={"team": "payments"},
        policy=admin_policy(),
        grants=[grant("lambda", retiring_principal=f"arn:aws:iam::{ACCOUNT}:role/deployer")],
    )
    plan = plan_for(stack(orders), empty_live())

    assert [c.address for c in plan.changes] == [
        "key.orders",
        "alias.alias/payments/orders",
        "grant.orders.lambda",
    ]
    key = plan.changes[0]
    assert key.action is Action.CREATE and key.resource is Resource.KEY
    assert ops(key) == ["CreateKey", "EnableKeyRotation"]
    assert dict(key.calls[0].params) == {
        "KeySpec": "SYMMETRIC_DEFAULT",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "MultiRegion": False,
        "Description": "Orders table",
        "Policy": json.dumps(admin_policy(), separators=(",", ":")),
        "Tags": [
            {"TagKey": "kmsplan:deletion-protection", "TagValue": "true"},
            {"TagKey": "kmsplan:deletion-window", "TagValue": "30"},
            {"TagKey": "kmsplan:key", "TagValue": "orders"},
            {"TagKey": "kmsplan:stack", "TagValue": "payments"},
            {"TagKey": "team", "TagValue": "payments"},
        ],
    }
    assert dict(key.calls[1].params) == {"KeyId": ref("key.orders"), "RotationPeriodInDays": 180}

    alias = plan.changes[1]
    assert alias.action is Action.CREATE
    assert dict(alias.calls[0].params) == {
        "AliasName": "alias/payments/orders",
        "TargetKeyId": ref("key.orders"),
    }
    assert alias.depends_on == ("key.orders",)

    g = plan.changes[2]
    assert g.action is Action.CREATE and g.depends_on == ("key.orders",)
    assert dict(g.calls[0].params) == {
        "KeyId": ref("key.orders"),
        "GranteePrincipal": f"arn:aws:iam::{ACCOUNT}:role/app",
        "Operations": ["Decrypt", "GenerateDataKey"],
        "Name": "kmsplan/lambda",
        "RetiringPrincipal": f"arn:aws:iam::{ACCOUNT}:role/deployer",
    }


def test_created_key_carries_its_policy_as_a_diff_for_review() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/app"
    plan = plan_for(stack(desired_key("orders", policy=user_policy(role))), empty_live())
    created = change(plan, "key.orders")
    assert created.policy_diff is not None
    assert {s["change"] for s in created.policy_diff["statements"]} == {"added"}
    assert role in {entry["principal"] for entry in created.policy_diff["access"]}


def test_key_without_declared_policy_is_created_with_the_kms_default_policy() -> None:
    plan = plan_for(stack(desired_key("orders")), empty_live())
    assert "Policy" not in change(plan, "key.orders").calls[0].params
    assert change(plan, "key.orders").policy_diff is None


def test_disabled_key_is_created_then_disabled_last() -> None:
    key = desired_key("orders", enabled=False, rotation=Rotation(enabled=True))
    plan = plan_for(stack(key), empty_live())
    assert [(c.address, ops(c)) for c in plan.changes] == [
        ("key.orders", ["CreateKey", "EnableKeyRotation"]),
        ("key.orders.disable", ["DisableKey"]),
    ]
    c, disable = plan.changes
    # An undeclared period is left to KMS's default.
    assert dict(c.calls[1].params) == {"KeyId": ref("key.orders")}
    assert dict(disable.calls[0].params) == {"KeyId": ref("key.orders")}
    assert (disable.resource, disable.action, disable.key) == (
        Resource.KEY,
        Action.UPDATE,
        "orders",
    )
    assert [(a.name, a.before, a.after) for a in disable.attributes] == [("enabled", True, False)]
    assert disable.depends_on == ("key.orders",)
    # Disabling is part of creating the key: one key to add, nothing to change.
    assert (plan.count(Action.CREATE), plan.count(Action.UPDATE)) == (1, 0)


def test_new_disabled_key_with_grants_is_disabled_after_its_grants() -> None:
    # (a) KMS refuses CreateGrant on a disabled key: disabling inside the key's change made
    # the grants fail on every apply.
    key = full_key(enabled=False, grants=[grant("lambda"), grant("batch")])
    plan = plan_for(stack(key), empty_live())
    assert [(c.address, ops(c)) for c in plan.changes] == [
        ("key.orders", ["CreateKey", "EnableKeyRotation"]),
        ("alias.alias/payments/orders", ["CreateAlias"]),
        ("grant.orders.batch", ["CreateGrant"]),
        ("grant.orders.lambda", ["CreateGrant"]),
        ("key.orders.disable", ["DisableKey"]),
    ]
    disable = change(plan, "key.orders.disable")
    assert disable.depends_on == ("key.orders", "grant.orders.batch", "grant.orders.lambda")
    assert "enabled: false" in disable.reason
    assert plan.warnings == ()
    assert (plan.count(Action.CREATE), plan.count(Action.UPDATE)) == (4, 0)


def test_grant_constraints_are_sent_in_kms_shape() -> None:
    constrained = grant(
        "reader",
        constraints=GrantConstraints(encryption_context_subset=(("service", "orders"),)),
    )
    plan = plan_for(stack(desired_key("orders", grants=[constrained])), empty_live())
    params = change(plan, "grant.orders.reader").calls[0].params
    assert params["Constraints"] == {"EncryptionContextSubset": {"service": "orders"}}


def test_bypass_is_sent_only_when_manifest_asks_and_the_run_allows() -> None:
    key = desired_key("orders", policy=admin_policy(), bypass_policy_lockout_safety_check=True)
    without = plan_for(stack(key), empty_live())
    assert "BypassPolicyLockoutSafetyCheck" not in change(without, "key.orders").calls[0].params
    allowed = plan_for(
        stack(key), empty_live(), GateOptions(bypass_policy_lockout_safety_check=True)
    )
    assert change(allowed, "key.orders").calls[0].params["BypassPolicyLockoutSafetyCheck"] is True
    not_asked = plan_for(
        stack(dataclasses.replace(key, bypass_policy_lockout_safety_check=False)),
        empty_live(),
        GateOptions(bypass_policy_lockout_safety_check=True),
    )
    assert "BypassPolicyLockoutSafetyCheck" not in change(not_asked, "key.orders").calls[0].params


# ---- converged and identity -------------------------------------------------------------------


def full_key(name: str = "orders", **kw: Any) -> Any:
    kw.setdefault("aliases", [f"alias/payments/{name}"])
    kw.setdefault("rotation", Rotation(enabled=True, period_days=365))
    kw.setdefault("tags", {"team": "payments"})
    kw.setdefault("policy", user_policy(f"arn:aws:iam::{ACCOUNT}:role/app"))
    kw.setdefault("grants", [grant("lambda")])
    return desired_key(name, **kw)


def test_converged_stack_plans_no_changes() -> None:
    desired = stack(full_key("orders"), full_key("refunds", enabled=False))
    plan = plan_for(desired, converged(desired))
    assert plan.changes == ()
    assert plan.cost == ()


def test_a_live_key_found_by_its_tag_is_never_created_again() -> None:
    # An apply died right after CreateKey: the key exists (tagged) but has no alias yet.
    desired = stack(full_key())
    live = live_state(live_key(full_key(), aliases=()), aliases={})
    plan = plan_for(desired, live)
    assert [c.address for c in plan.changes] == ["alias.alias/payments/orders"]
    assert dict(plan.changes[0].calls[0].params) == {
        "AliasName": "alias/payments/orders",
        "TargetKeyId": key_id_for("orders"),
    }
    assert plan.changes[0].depends_on == ()


def test_duplicate_live_keys_manage_one_and_release_the_other() -> None:
    desired = stack(full_key())
    first = live_key(full_key(), key_id="aaaaaaaa-0000-0000-0000-000000000000")
    second = live_key(full_key(), key_id="bbbbbbbb-0000-0000-0000-000000000000")
    matches = match_keys(desired, live_state(first, second))
    assert matches[0].live is not None and matches[0].live.key_id == first.key_id
    plan = plan_for(
        desired, live_state(second, first, aliases={"alias/payments/orders": first.key_id})
    )
    [release] = plan.changes
    assert (release.address, release.action) == ("key.orders.duplicates", Action.RELEASE)
    assert [dict(c.params)["KeyId"] for c in release.calls] == [second.key_id] * 2


# ---- updates ----------------------------------------------------------------------------------


def test_description_drift_plans_update_key_description() -> None:
    desired = stack(full_key(description="Orders"))
    live = live_state(live_key(full_key(description="edited by hand")))
    c = change(plan_for(desired, live), "key.orders")
    assert c.action is Action.UPDATE
    assert ops(c) == ["UpdateKeyDescription"]
    assert dict(c.calls[0].params) == {"KeyId": key_id_for("orders"), "Description": "Orders"}
    assert [(a.name, a.before, a.after) for a in c.attributes] == [
        ("description", "edited by hand", "Orders")
    ]


def test_update_order_is_enable_rotation_description_policy_tags() -> None:
    want = full_key(description="new", tags={"team": "payments", "env": "prod"})
    drifted = live_key(
        full_key(description="old", tags={"team": "x", "legacy": "1"}),
        enabled=False,
        rotation=Rotation(enabled=False),
        policy=admin_policy(),
    )
    c = change(plan_for(stack(want), live_state(drifted)), "key.orders")
    assert ops(c) == [
        "EnableKey",
        "EnableKeyRotation",
        "UpdateKeyDescription",
        "PutKeyPolicy",
        "TagResource",
        "UntagResource",
    ]
    assert c.calls[4].params["Tags"] == [
        {"TagKey": "env", "TagValue": "prod"},
        {"TagKey": "team", "TagValue": "payments"},
    ]
    assert c.calls[5].params["TagKeys"] == ["legacy"]


def test_disable_comes_after_every_other_update() -> None:
    want = full_key(description="new", enabled=False)
    plan = plan_for(stack(want), live_state(live_key(full_key(description="old"))))
    assert [(c.address, ops(c)) for c in plan.changes] == [
        ("key.orders", ["UpdateKeyDescription"]),
        ("key.orders.disable", ["DisableKey"]),
    ]
    assert [a.name for a in change(plan, "key.orders").attributes] == ["description"]
    assert change(plan, "key.orders.disable").depends_on == ("key.orders",)
    # One key changes: its disable is not a change of its own.
    assert plan.count(Action.UPDATE) == 1


def test_disabling_alone_is_one_change_with_nothing_else_to_wait_for() -> None:
    plan = plan_for(stack(full_key(enabled=False)), live_state(live_key(full_key())))
    assert [(c.address, ops(c)) for c in plan.changes] == [("key.orders.disable", ["DisableKey"])]
    disable = plan.changes[0]
    assert dict(disable.calls[0].params) == {"KeyId": key_id_for("orders")}
    assert disable.depends_on == ()
    assert plan.count(Action.UPDATE) == 1


def test_disabling_a_key_and_adding_a_grant_disables_after_the_grant() -> None:
    # (b) Disabling first made the new grant fail with DisabledException.
    want = full_key(enabled=False, grants=[grant("lambda"), grant("new")])
    plan = plan_for(stack(want), live_state(live_key(full_key())))
    assert [(c.address, ops(c)) for c in plan.changes] == [
        ("grant.orders.new", ["CreateGrant"]),
        ("key.orders.disable", ["DisableKey"]),
    ]
    assert change(plan, "grant.orders.new").depends_on == ()
    assert change(plan, "key.orders.disable").depends_on == ("grant.orders.new",)
    assert "enabled temporarily" not in change(plan, "key.orders.disable").reason


def test_disable_waits_for_revoked_grants_too_and_comes_before_key_deletions() -> None:
    want = full_key(enabled=False, grants=[grant("new")])
    gone = full_key("zz-gone")
    live = live_state(live_key(full_key()), live_key(gone, protected=False))
    plan = plan_for(stack(want), live, OPEN_GATE)
    assert [c.address for c in plan.changes] == [
        "grant.orders.new",
        "grant.orders.lambda",
        "alias.alias/payments/zz-gone",
        "key.orders.disable",
        "key.zz-gone",
    ]
    assert change(plan, "key.orders.disable").depends_on == (
        "grant.orders.lambda",
        "grant.orders.new",
    )


def test_rotation_turned_off_out_of_band_is_turned_back_on() -> None:
    want = full_key(rotation=Rotation(enabled=True, period_days=180))
    live = live_state(live_key(want, rotation=Rotation(enabled=False)))
    c = change(plan_for(stack(want), live), "key.orders")
    assert ops(c) == ["EnableKeyRotation"]
    assert dict(c.calls[0].params) == {"KeyId": key_id_for("orders"), "RotationPeriodInDays": 180}


def test_unknown_live_rotation_period_never_produces_a_diff() -> None:
    want = full_key(rotation=Rotation(enabled=True, period_days=180))
    live = live_state(live_key(want, rotation=Rotation(enabled=True, period_days=None)))
    assert plan_for(stack(want), live).changes == ()


def test_an_unreadable_live_rotation_period_is_said_to_be_unverified() -> None:
    want = full_key(rotation=Rotation(enabled=True, period_days=180))
    live = live_state(live_key(want, rotation=Rotation(enabled=True, period_days=None)))
    assert plan_for(stack(want), live).warnings == (
        "key.orders: the live rotation period could not be read from KMS; the declared 180 "
        "days were not verified",
    )
    # Nothing to say when the period is not declared, or when it was read.
    undeclared = full_key(rotation=Rotation(enabled=True, period_days=None))
    assert plan_for(stack(undeclared), live).warnings == ()
    assert plan_for(stack(want), live_state(live_key(want))).warnings == ()


def test_rotation_period_change_calls_enable_key_rotation_with_the_new_period() -> None:
    want = full_key(rotation=Rotation(enabled=True, period_days=180))
    live = live_state(live_key(want, rotation=Rotation(enabled=True, period_days=365)))
    c = change(plan_for(stack(want), live), "key.orders")
    assert [(a.name, a.before, a.after) for a in c.attributes] == [
        ("rotation.period_days", 365, 180)
    ]
    assert dict(c.calls[0].params) == {"KeyId": key_id_for("orders"), "RotationPeriodInDays": 180}


def test_rotation_disabled_in_manifest_calls_disable_key_rotation() -> None:
    want = full_key(rotation=Rotation(enabled=False))
    live = live_state(live_key(want, rotation=Rotation(enabled=True, period_days=365)))
    assert ops(change(plan_for(stack(want), live), "key.orders")) == ["DisableKeyRotation"]


def test_policy_in_an_equivalent_form_plans_clean() -> None:
    want = full_key()
    rewritten = json.loads(json.dumps(want.policy))
    rewritten["Statement"].reverse()
    rewritten["Statement"][0]["Action"] = ["KMS:DECRYPT", "kms:generatedatakey"]
    rewritten["Statement"][1]["Principal"] = {"AWS": ACCOUNT}
    rewritten["Statement"][1]["Action"] = ["kms:*"]
    live = live_state(live_key(want, policy=rewritten))
    assert plan_for(stack(want), live).changes == ()


def test_changed_policy_plans_put_key_policy_with_a_statement_diff() -> None:
    want = full_key()
    live = live_state(live_key(want, policy=admin_policy()))
    c = change(plan_for(stack(want), live), "key.orders")
    assert ops(c) == ["PutKeyPolicy"]
    assert dict(c.calls[0].params) == {
        "KeyId": key_id_for("orders"),
        "PolicyName": "default",
        "Policy": json.dumps(want.policy, separators=(",", ":")),
    }
    assert c.policy_diff is not None and c.policy_diff["label_only"] is False
    assert c.attributes[0].name == "policy"
    assert "label" not in c.reason


def test_sid_rename_is_a_label_only_policy_update() -> None:
    want = full_key(policy=admin_policy(sid="Admins"))
    live = live_state(live_key(want, policy=admin_policy(sid="AccountAdmin")))
    c = change(plan_for(stack(want), live), "key.orders")
    assert ops(c) == ["PutKeyPolicy"]
    assert c.policy_diff is not None and c.policy_diff["label_only"] is True
    assert c.reason == "policy statement labels (Sid) differ; access is unchanged"


def test_undeclared_policy_is_not_managed() -> None:
    want = full_key(policy=None)
    live = live_state(live_key(want, policy=user_policy("arn:aws:iam::123456789012:role/x")))
    assert plan_for(stack(want), live).changes == ()


def test_removed_tag_is_put_back_and_reserved_and_aws_tags_are_left_alone() -> None:
    want = full_key(tags={"team": "payments", "cost-center": "42"})
    live = live_state(
        live_key(
            want,
            omit_tags=["cost-center"],
            extra_tags={"aws:cloudformation:stack-name": "x", "kmsplan:future": "1"},
        )
    )
    c = change(plan_for(stack(want), live), "key.orders")
    assert ops(c) == ["TagResource"]
    assert c.calls[0].params["Tags"] == [{"TagKey": "cost-center", "TagValue": "42"}]


def test_missing_protection_tag_is_restored_as_a_change_of_deletion_protected() -> None:
    want = full_key()
    live = live_state(live_key(want, omit_tags=["kmsplan:deletion-protection"]))
    c = change(plan_for(stack(want), live), "key.orders")
    assert c.calls[0].params["Tags"] == [
        {"TagKey": "kmsplan:deletion-protection", "TagValue": "true"}
    ]
    assert [(a.name, a.before, a.after) for a in c.attributes] == [
        ("deletion.protected", None, "true")
    ]


def test_turning_protection_off_is_its_own_tag_change() -> None:
    want = full_key(deletion=dataclasses.replace(full_key().deletion, protected=False))
    live = live_state(live_key(full_key()))
    c = change(plan_for(stack(want), live), "key.orders")
    assert c.calls[0].params["Tags"] == [
        {"TagKey": "kmsplan:deletion-protection", "TagValue": "false"}
    ]


# ---- immutable --------------------------------------------------------------------------------


def test_immutable_change_is_blocked_with_the_safe_path() -> None:
    want = full_key(spec="RSA_2048", rotation=Rotation(enabled=False))
    live = live_state(live_key(full_key(rotation=Rotation(enabled=False))))
    c = change(plan_for(stack(want), live), "key.orders")
    assert c.action is Action.UPDATE
    assert [b.rule for b in c.blocked] == ["immutable"]
    assert "spec 'SYMMETRIC_DEFAULT' -> 'RSA_2048'" in c.blocked[0].reason
    assert "declare a new key" in c.blocked[0].unblock
    assert "move the aliases" in c.blocked[0].unblock
    assert "re-encrypt" in c.blocked[0].unblock
    assert not any(op in ("CreateKey", "ScheduleKeyDeletion") for op in ops(c))


# ---- deletion and restore ---------------------------------------------------------------------


def test_undeclared_live_key_without_a_recorded_window_gets_the_stack_window() -> None:
    # A key from before the window was recorded on keys: the stack's defaults decide.
    keep, gone = full_key("orders"), full_key("legacy")
    live = live_state(live_key(keep), live_key(gone, protected=False, omit_tags=(TAG_WINDOW,)))
    plan = plan_for(stack(keep, default_window_days=14), live)
    c = change(plan, "key.legacy")
    assert c.action is Action.DELETE and c.destructive
    assert dict(c.calls[0].params) == {"KeyId": key_id_for("legacy"), "PendingWindowInDays": 14}
    assert "pending window 14 days from defaults.deletion.window_days" in c.reason


def test_a_removed_keys_own_window_wins_over_the_stack_default() -> None:
    # defaults.deletion.window_days: 7, the key declared 30 and was applied so: removing its
    # block schedules the deletion with its own 30 days, recorded on the key.
    keep = full_key("orders")
    gone = dataclasses.replace(full_key("legacy"), deletion=Deletion(window_days=30))
    live = live_state(live_key(keep), live_key(gone, protected=False))
    plan = plan_for(stack(keep, default_window_days=7), live)
    c = change(plan, "key.legacy")
    assert dict(c.calls[0].params)["PendingWindowInDays"] == 30
    assert "pending window 30 days, as recorded on the key" in c.reason
    assert c.before is not None and c.before["deletion_window_days"] == 30


@pytest.mark.parametrize("tag", ["6", "31", "thirty", ""])
def test_a_recorded_window_kms_would_refuse_is_ignored_for_the_stack_window(tag: str) -> None:
    keep, gone = full_key("orders"), full_key("legacy")
    live = live_state(live_key(keep), live_key(gone, protected=False, extra_tags={TAG_WINDOW: tag}))
    c = change(plan_for(stack(keep, default_window_days=21), live), "key.legacy")
    assert dict(c.calls[0].params)["PendingWindowInDays"] == 21


def test_a_declared_window_is_recorded_on_the_key_and_a_change_of_it_is_an_update() -> None:
    want = dataclasses.replace(full_key(), deletion=Deletion(window_days=7))
    live = live_state(live_key(full_key()))
    c = change(plan_for(stack(want), live), "key.orders")
    assert [(a.name, a.before, a.after) for a in c.attributes] == [
        ("deletion.window_days", "30", "7")
    ]
    assert ops(c) == ["TagResource"]
    assert c.calls[0].params["Tags"] == [{"TagKey": TAG_WINDOW, "TagValue": "7"}]


def test_alias_of_a_deleted_key_is_deleted_before_the_key() -> None:
    keep, gone = full_key("orders"), full_key("legacy")
    live = live_state(live_key(keep), live_key(gone, protected=False))
    plan = plan_for(stack(keep), live, OPEN_GATE)
    assert [c.address for c in plan.changes] == ["alias.alias/payments/legacy", "key.legacy"]
    assert ops(plan.changes[0]) == ["DeleteAlias"]
    assert plan.changes[1].depends_on == ("alias.alias/payments/legacy",)


def test_undeclared_key_already_pending_deletion_is_left_alone() -> None:
    keep, gone = full_key("orders"), full_key("legacy")
    live = live_state(live_key(keep), live_key(gone, state=KeyState.PENDING_DELETION))
    plan = plan_for(stack(keep), live)
    assert plan.changes == ()
    assert any("key.legacy" in note and "pending deletion" in note for note in plan.unmanaged)


def test_declared_key_pending_deletion_is_restored_then_updated() -> None:
    want = full_key(description="new")
    live = live_state(live_key(full_key(description="old"), state=KeyState.PENDING_DELETION))
    c = change(plan_for(stack(want), live), "key.orders")
    assert c.action is Action.RESTORE
    assert ops(c) == ["CancelKeyDeletion", "EnableKey", "UpdateKeyDescription"]
    assert dict(c.calls[0].params) == {"KeyId": key_id_for("orders")}


def test_restore_turns_rotation_back_on_when_kms_reports_it_off_while_pending() -> None:
    # Real KMS reads rotation as off while a key is pending deletion.
    want = full_key()
    pending = live_key(want, state=KeyState.PENDING_DELETION, rotation=Rotation(enabled=False))
    c = change(plan_for(stack(want), live_state(pending)), "key.orders")
    assert ops(c) == ["CancelKeyDeletion", "EnableKey", "EnableKeyRotation"]


def test_restored_key_that_should_stay_disabled_is_not_enabled() -> None:
    want = full_key(enabled=False, rotation=Rotation(enabled=False))
    live = live_state(live_key(want, state=KeyState.PENDING_DELETION))
    c = change(plan_for(stack(want), live), "key.orders")
    assert ops(c) == ["CancelKeyDeletion"]


def test_grants_of_a_restored_key_wait_for_the_restore() -> None:
    want = full_key(grants=[grant("lambda"), grant("new")])
    live = live_state(live_key(full_key(), state=KeyState.PENDING_DELETION))
    plan = plan_for(stack(want), live)
    assert change(plan, "grant.orders.new").depends_on == ("key.orders",)


# ---- aliases ----------------------------------------------------------------------------------


def test_alias_moved_within_the_stack_is_retargeted_and_not_blocked() -> None:
    orders, refunds = full_key("orders"), full_key("refunds")
    live = live_state(
        live_key(orders),
        live_key(refunds),
        aliases={
            "alias/payments/orders": key_id_for("refunds"),
            "alias/payments/refunds": key_id_for("refunds"),
        },
    )
    c = change(plan_for(stack(orders, refunds), live), "alias.alias/payments/orders")
    assert c.action is Action.UPDATE and not c.blocked
    assert dict(c.calls[0].params) == {
        "AliasName": "alias/payments/orders",
        "TargetKeyId": key_id_for("orders"),
    }
    assert c.reason == "moves from key.refunds to key.orders"


def test_alias_held_by_a_key_outside_the_stack_is_a_blocked_takeover() -> None:
    orders = full_key("orders")
    foreign_id = "ffffffff-0000-0000-0000-000000000000"
    live = live_state(live_key(orders), aliases={"alias/payments/orders": foreign_id})
    c = change(plan_for(stack(orders), live), "alias.alias/payments/orders")
    assert [b.rule for b in c.blocked] == ["alias-takeover"]
    assert foreign_id in c.blocked[0].reason
    assert "--allow-alias-takeover" in c.blocked[0].unblock
    allowed = plan_for(stack(orders), live, GateOptions(allow_alias_takeover=True))
    assert not change(allowed, "alias.alias/payments/orders").blocked


def test_alias_move_to_a_new_key_comes_before_the_old_keys_deletion() -> None:
    new = full_key("orders-v2", aliases=["alias/payments/orders"])
    old = full_key("orders")
    live = live_state(live_key(old, protected=False))
    plan = plan_for(stack(new), live, OPEN_GATE)
    assert [c.address for c in plan.changes] == [
        "key.orders-v2",
        "alias.alias/payments/orders",
        "grant.orders-v2.lambda",
        "key.orders",
    ]
    move = plan.changes[1]
    assert move.action is Action.UPDATE
    assert dict(move.calls[0].params)["TargetKeyId"] == ref("key.orders-v2")
    assert move.depends_on == ("key.orders-v2",)
    assert plan.changes[3].depends_on == ("alias.alias/payments/orders",)


def test_aliases_on_keys_outside_the_stack_are_never_deleted() -> None:
    orders = full_key("orders")
    live = live_state(
        live_key(orders),
        aliases={
            "alias/payments/orders": key_id_for("orders"),
            "alias/someone-else": "ffffffff-0000-0000-0000-000000000000",
        },
    )
    assert plan_for(stack(orders), live).changes == ()


def test_alias_no_longer_declared_on_a_managed_key_is_deleted() -> None:
    want = full_key(aliases=["alias/payments/orders"])
    live = live_state(live_key(full_key(aliases=["alias/payments/orders", "alias/old-name"])))
    c = change(plan_for(stack(want), live), "alias.alias/old-name")
    assert c.action is Action.DELETE
    assert dict(c.calls[0].params) == {"AliasName": "alias/old-name"}


# ---- grants -----------------------------------------------------------------------------------


def test_changed_grant_is_created_anew_then_the_old_one_revoked_in_one_change() -> None:
    # Create before revoke: the grantee keeps access throughout (KMS allows two grants with
    # one name), and a failed create leaves the old grant in place.
    want = full_key(grants=[grant("lambda", operations=("Decrypt",))])
    live = live_state(live_key(full_key()))
    c = change(plan_for(stack(want), live), "grant.orders.lambda")
    assert c.action is Action.UPDATE
    assert ops(c) == ["CreateGrant", "RevokeGrant"]
    assert dict(c.calls[1].params) == {
        "KeyId": key_id_for("orders"),
        "GrantId": "grant-orders-lambda",
    }
    assert c.calls[0].params["Operations"] == ["Decrypt"]
    assert [(a.name, a.before, a.after) for a in c.attributes] == [
        ("operations", ["Decrypt", "GenerateDataKey"], ["Decrypt"])
    ]


def test_revoked_grant_is_created_again() -> None:
    want = full_key()
    live = live_state(live_key(want, grants=()))
    c = change(plan_for(stack(want), live), "grant.orders.lambda")
    assert c.action is Action.CREATE and ops(c) == ["CreateGrant"]
    assert c.depends_on == ()


def test_undeclared_owned_grant_is_revoked_last() -> None:
    want = full_key(grants=[], description="x")
    live = live_state(live_key(full_key(description="y")))
    plan = plan_for(stack(want), live)
    assert [c.address for c in plan.changes] == ["key.orders", "grant.orders.lambda"]
    assert plan.changes[1].action is Action.DELETE
    assert ops(plan.changes[1]) == ["RevokeGrant"]


def test_foreign_grants_are_never_touched_only_listed() -> None:
    want = full_key()
    ebs = Grant(
        name="",
        grantee="arn:aws:iam::123456789012:role/aws-service-role/ebs",
        operations=("Decrypt",),
        grant_id="ebs-grant-id",
    )
    live = live_state(live_key(want, foreign_grants=[ebs]))
    plan = plan_for(stack(want), live)
    assert plan.changes == ()
    assert plan.unmanaged == (
        "grant ebs-grant-id on key.orders (grantee "
        "arn:aws:iam::123456789012:role/aws-service-role/ebs): not named kmsplan/<name>, "
        "never changed by kmsplan",
    )


def test_duplicate_owned_grants_keep_the_matching_one_and_revoke_the_rest() -> None:
    want = full_key()
    dup = dataclasses.replace(want.grants[0], grant_id="dup")
    live_k = live_key(want)
    live = live_state(dataclasses.replace(live_k, grants=(*live_k.grants, dup)))
    c = change(plan_for(stack(want), live), "grant.orders.lambda")
    assert ops(c) == ["RevokeGrant"]
    assert c.calls[0].params["GrantId"] == "dup"


# ---- order ------------------------------------------------------------------------------------


def test_order_is_deterministic_and_by_phase() -> None:
    a, b = full_key("a"), full_key("b")
    gone = full_key("zz-gone")
    live = live_state(live_key(gone, protected=False))
    plan = plan_for(stack(b, a), live, OPEN_GATE)
    assert [c.address for c in plan.changes] == [
        "key.a",
        "key.b",
        "alias.alias/payments/a",
        "alias.alias/payments/b",
        "grant.a.lambda",
        "grant.b.lambda",
        "alias.alias/payments/zz-gone",
        "key.zz-gone",
    ]
    assert plan_for(stack(a, b), live, OPEN_GATE) == plan
    seen: set[str] = set()
    for c in plan.changes:
        assert set(c.depends_on) <= seen, c.address
        seen.add(c.address)


def test_plan_carries_stack_account_region_and_gate() -> None:
    plan = plan_for(stack(full_key()), empty_live(), OPEN_GATE)
    assert (plan.stack, plan.account_id, plan.region) == ("payments", ACCOUNT, "us-east-1")
    assert plan.gate == OPEN_GATE


def test_usage_answer_is_used_for_deletion_candidates() -> None:
    gone = full_key("legacy")
    live = dataclasses.replace(
        live_state(live_key(full_key("orders")), live_key(gone, protected=False)),
        last_usage={"legacy": never_used()},
    )
    plan = plan_for(stack(full_key("orders")), live, GateOptions(allow_delete=True))
    assert not change(plan, "key.legacy").blocked


def test_key_in_a_transient_state_is_not_enabled_but_reported() -> None:
    want = full_key()
    live = live_state(live_key(want, state=KeyState.PENDING_IMPORT, enabled=False))
    plan = plan_for(stack(want), live)
    assert plan.changes == ()
    assert plan.warnings == (
        "key.orders is PendingImport: enabling or disabling it is not planned until it is "
        "Enabled or Disabled",
    )


# ---- keys that stay disabled ----------------------------------------------------------------


TEMPORARY = (
    "enabled temporarily: KMS refuses CreateGrant/EnableKeyRotation on a disabled key; "
    "disabled again at the end of this apply"
)


def test_new_grant_on_a_key_that_stays_disabled_enables_it_for_the_apply() -> None:
    # (c) Until now only a warning: the CreateGrant failed with DisabledException.
    want = full_key(enabled=False, grants=[grant("lambda"), grant("new")])
    plan = plan_for(stack(want), live_state(live_key(full_key(enabled=False))))
    assert [(c.address, ops(c)) for c in plan.changes] == [
        ("key.orders", ["EnableKey"]),
        ("grant.orders.new", ["CreateGrant"]),
        ("key.orders.disable", ["DisableKey"]),
    ]
    key = change(plan, "key.orders")
    assert key.reason == TEMPORARY
    assert key.attributes == ()  # the key ends as it was: disabled
    assert change(plan, "grant.orders.new").depends_on == ("key.orders",)
    disable = change(plan, "key.orders.disable")
    assert disable.depends_on == ("key.orders", "grant.orders.new")
    assert "the next plan disables it" in disable.reason
    assert plan.warnings == ()
    assert (plan.count(Action.CREATE), plan.count(Action.UPDATE)) == (1, 1)


def test_rotation_change_on_a_key_that_stays_disabled_enables_it_first() -> None:
    want = full_key(enabled=False, description="new", rotation=Rotation(enabled=True))
    live = live_key(full_key(enabled=False, description="old", rotation=Rotation(enabled=False)))
    plan = plan_for(stack(want), live_state(live))
    assert [(c.address, ops(c)) for c in plan.changes] == [
        ("key.orders", ["EnableKey", "EnableKeyRotation", "UpdateKeyDescription"]),
        ("key.orders.disable", ["DisableKey"]),
    ]
    key = change(plan, "key.orders")
    assert [a.name for a in key.attributes] == ["rotation.enabled", "description"]
    assert key.reason == TEMPORARY


def test_turning_rotation_off_on_a_disabled_key_enables_it_first() -> None:
    want = full_key(enabled=False, rotation=Rotation(enabled=False))
    live = live_key(full_key(enabled=False, rotation=Rotation(enabled=True, period_days=365)))
    plan = plan_for(stack(want), live_state(live))
    assert [(c.address, ops(c)) for c in plan.changes] == [
        ("key.orders", ["EnableKey", "DisableKeyRotation"]),
        ("key.orders.disable", ["DisableKey"]),
    ]


def test_other_updates_of_a_disabled_key_need_no_temporary_enable() -> None:
    want = full_key(enabled=False, description="new", grants=[])
    live = live_key(full_key(enabled=False, description="old", grants=[]))
    plan = plan_for(stack(want), live_state(live))
    assert [(c.address, ops(c)) for c in plan.changes] == [("key.orders", ["UpdateKeyDescription"])]


def test_revoking_a_grant_of_a_disabled_key_needs_no_temporary_enable() -> None:
    want = full_key(enabled=False, grants=[])
    plan = plan_for(stack(want), live_state(live_key(full_key(enabled=False))))
    assert [(c.address, ops(c)) for c in plan.changes] == [("grant.orders.lambda", ["RevokeGrant"])]


def test_restored_key_that_stays_disabled_is_enabled_for_a_new_grant() -> None:
    want = full_key(enabled=False, grants=[grant("lambda"), grant("new")])
    live = live_state(live_key(full_key(enabled=False), state=KeyState.PENDING_DELETION))
    plan = plan_for(stack(want), live)
    assert [(c.address, ops(c)) for c in plan.changes] == [
        ("key.orders", ["CancelKeyDeletion", "EnableKey"]),
        ("grant.orders.new", ["CreateGrant"]),
        ("key.orders.disable", ["DisableKey"]),
    ]
    assert change(plan, "key.orders").action is Action.RESTORE
    assert TEMPORARY in change(plan, "key.orders").reason


def test_key_in_a_transient_state_gets_no_temporary_enable() -> None:
    want = full_key(enabled=False, grants=[grant("lambda"), grant("new")])
    live = live_state(live_key(full_key(enabled=False), state=KeyState.PENDING_IMPORT))
    plan = plan_for(stack(want), live)
    assert [c.address for c in plan.changes] == ["grant.orders.new"]
