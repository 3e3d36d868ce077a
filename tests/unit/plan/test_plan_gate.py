"""The plan-time safety gate: each rule blocks with its reason and unblock hint, and the
unblocked path really is unblocked."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from builders import (
    ACCOUNT,
    CALLER_ARN,
    NOW,
    admin_policy,
    desired_key,
    grant,
    live_key,
    live_state,
    lockout_policy,
    never_used,
    stack,
    unused,
    user_policy,
)

from kmsplan.model import TAG_WINDOW, KeyState, LastUsage
from kmsplan.plan.differ import diff, is_protected
from kmsplan.plan.types import Change, GateOptions, Plan

KEEP = desired_key("orders", aliases=["alias/payments/orders"])
GONE = desired_key("legacy")
ALL_FLAGS = GateOptions(allow_delete=True)


DEFAULT_GATE = GateOptions()


def deletion_plan(
    *,
    protected: bool = False,
    gate: GateOptions = ALL_FLAGS,
    usage: LastUsage | None = None,
    window: int = 30,
    live_tags_omit: tuple[str, ...] = (),
    live_tags_extra: dict[str, str] | None = None,
) -> Change:
    live = dataclasses.replace(
        live_state(
            live_key(KEEP),
            # No recorded window on the key: the stack's default window is sent.
            live_key(
                GONE,
                protected=protected,
                omit_tags=(TAG_WINDOW, *live_tags_omit),
                extra_tags=live_tags_extra,
            ),
        ),
        last_usage={"legacy": usage or never_used()},
    )
    plan = diff(stack(KEEP, default_window_days=window), live, gate, now=NOW)
    [c] = [c for c in plan.changes if c.address == "key.legacy"]
    return c


def rules(c: Change) -> list[str]:
    return [b.rule for b in c.blocked]


def test_deletion_passes_when_every_condition_holds() -> None:
    c = deletion_plan()
    assert c.blocked == ()
    assert c.calls[0].operation == "ScheduleKeyDeletion"


def test_protected_key_is_blocked_not_deleted() -> None:
    c = deletion_plan(protected=True)
    assert rules(c) == ["deletion-protection"]
    block = c.blocked[0]
    assert block.reason == (
        "key.legacy is deletion-protected: its live tag kmsplan:deletion-protection is 'true'. "
        "Removing the key's block does not remove its protection"
    )
    assert block.unblock == (
        "declare the key again with `deletion: {protected: false}`, apply that change, "
        "then remove the key's block"
    )


def test_missing_protection_tag_protects() -> None:
    c = deletion_plan(live_tags_omit=("kmsplan:deletion-protection",))
    assert rules(c) == ["deletion-protection"]
    assert "is missing" in c.blocked[0].reason


def test_missing_protection_tag_protects_with_every_flag_given() -> None:
    # The tag, not the manifest or the flags, decides: an unprotected declaration read back
    # without its tag still blocks, with the whole reason and the way out.
    every_flag = GateOptions(allow_delete=True, ignore_usage=True)
    c = deletion_plan(gate=every_flag, live_tags_omit=("kmsplan:deletion-protection",))
    assert [(b.rule, b.reason, b.unblock) for b in c.blocked] == [
        (
            "deletion-protection",
            "key.legacy is deletion-protected: its live tag kmsplan:deletion-protection is "
            "missing. Removing the key's block does not remove its protection",
            "declare the key again with `deletion: {protected: false}`, apply that change, "
            "then remove the key's block",
        )
    ]


@pytest.mark.parametrize("value", ["TRUE", "yes", "", "False", "FALSE", " false", "0"])
def test_a_protection_tag_other_than_exactly_false_protects(value: str) -> None:
    c = deletion_plan(live_tags_extra={"kmsplan:deletion-protection": value})
    assert rules(c) == ["deletion-protection"]
    assert f"kmsplan:deletion-protection is {value!r}." in c.blocked[0].reason


@pytest.mark.parametrize(
    ("value", "protected"),
    [
        (None, True),
        ("true", True),
        ("TRUE", True),
        ("", True),
        ("False", True),
        ("false", False),
    ],
)
def test_is_protected_reads_only_an_exact_false_as_unprotected(
    value: str | None, protected: bool
) -> None:
    if value is None:
        key = live_key(GONE, omit_tags=("kmsplan:deletion-protection",))
    else:
        key = live_key(GONE, extra_tags={"kmsplan:deletion-protection": value})
    assert is_protected(key) is protected


def test_deletion_needs_allow_delete() -> None:
    c = deletion_plan(gate=GateOptions())
    assert rules(c) == ["allow-delete"]
    assert c.blocked[0].unblock == "re-run with --allow-delete"


def test_window_outside_7_to_30_is_blocked() -> None:
    for window in (6, 31):
        c = deletion_plan(window=window)
        assert rules(c) == ["window"]
        assert f"pending window {window} days is outside 7-30" in c.blocked[0].reason


def test_unknown_usage_blocks_unless_ignored() -> None:
    unknown = LastUsage(known=False, detail="GetKeyLastUsage failed: InternalFailure")
    c = deletion_plan(usage=unknown)
    assert rules(c) == ["usage"]
    assert c.blocked[0].reason == (
        "key.legacy: the key's last cryptographic use is unknown: "
        "GetKeyLastUsage failed: InternalFailure"
    )
    assert "--ignore-usage" in c.blocked[0].unblock
    assert (
        deletion_plan(usage=unknown, gate=GateOptions(allow_delete=True, ignore_usage=True)).blocked
        == ()
    )


def test_usage_missing_from_live_state_counts_as_unknown() -> None:
    live = live_state(live_key(KEEP), live_key(GONE, protected=False))
    plan = diff(stack(KEEP), live, ALL_FLAGS, now=NOW)
    assert [b.rule for c in plan.changes for b in c.blocked] == ["usage"]


def test_recent_use_blocks_even_with_ignore_usage() -> None:
    recent = dataclasses.replace(unused(), last_used=(NOW - timedelta(days=3)).isoformat())
    c = deletion_plan(usage=recent, gate=GateOptions(allow_delete=True, ignore_usage=True))
    assert rules(c) == ["usage"]
    assert "(3 days ago), within --unused-for 30 days" in c.blocked[0].reason


def test_use_older_than_unused_for_passes_and_the_threshold_is_the_flag() -> None:
    assert deletion_plan(usage=unused(days=45)).blocked == ()
    strict = GateOptions(allow_delete=True, unused_for_days=60)
    assert rules(deletion_plan(usage=unused(days=45), gate=strict)) == ["usage"]


def test_never_used_since_a_recent_tracking_start_is_not_proof_of_disuse() -> None:
    short = LastUsage(
        known=True, last_used=None, tracking_start=(NOW - timedelta(days=5)).isoformat()
    )
    c = deletion_plan(usage=short)
    assert rules(c) == ["usage"]
    assert "tracked the key's use only since" in c.blocked[0].reason


def test_every_failing_rule_is_reported() -> None:
    c = deletion_plan(protected=True, gate=GateOptions(), window=31)
    assert rules(c) == ["deletion-protection", "allow-delete", "window"]


# ---- mass deletion ----------------------------------------------------------------------------


def mass_plan(gate: GateOptions, *extra_live: object) -> Plan:
    a, b = desired_key("a"), desired_key("b")
    live = dataclasses.replace(
        live_state(live_key(a, protected=False), live_key(b, protected=False), *extra_live),  # type: ignore[arg-type]
        last_usage={"a": never_used(), "b": never_used()},
    )
    return diff(stack(), live, gate, now=NOW)


def test_deleting_every_key_of_the_stack_is_refused() -> None:
    plan = mass_plan(ALL_FLAGS)
    assert [rules(c) for c in plan.changes] == [["mass-deletion"], ["mass-deletion"]]
    assert plan.changes[0].blocked[0].reason == (
        "this plan would delete every key of stack payments (2): an empty or mistyped "
        "manifest, or a wrong `stack:`, looks exactly like this"
    )
    assert "--allow-delete-all" in plan.changes[0].blocked[0].unblock


def test_mass_deletion_is_allowed_with_allow_delete_all() -> None:
    plan = mass_plan(GateOptions(allow_delete=True, allow_delete_all=True))
    assert [c.blocked for c in plan.changes] == [(), ()]


def test_keys_already_pending_deletion_do_not_count_for_mass_deletion() -> None:
    pending = live_key(desired_key("c"), state=KeyState.PENDING_DELETION)
    plan = mass_plan(ALL_FLAGS, pending)
    assert [rules(c) for c in plan.changes] == [["mass-deletion"], ["mass-deletion"]]


def test_deleting_some_keys_is_not_mass_deletion() -> None:
    assert deletion_plan().blocked == ()


def test_empty_stack_with_nothing_live_plans_nothing() -> None:
    plan = diff(stack(), live_state(), GateOptions(), now=NOW)
    assert plan.changes == ()


# ---- lockout ----------------------------------------------------------------------------------


def create_plan(
    key_policy: dict[str, object], gate: GateOptions = DEFAULT_GATE, **kw: object
) -> Change:
    key = desired_key("orders", policy=key_policy, **kw)  # type: ignore[arg-type]
    [c] = diff(stack(key), live_state(), gate, now=NOW).changes
    return c


def test_policy_that_locks_everyone_out_is_blocked_at_create() -> None:
    c = create_plan(lockout_policy())
    assert rules(c) == ["lockout"]
    assert c.blocked[0].reason.startswith("key.orders: CreateKey: the policy would lock out ")
    assert f"arn:aws:iam::{ACCOUNT}:root" in c.blocked[0].reason
    assert "--bypass-policy-lockout-safety-check" in c.blocked[0].unblock


def test_policy_that_lets_the_caller_manage_passes() -> None:
    caller_admin = user_policy(CALLER_ARN)
    caller_admin["Statement"] = [
        {"Effect": "Allow", "Principal": {"AWS": CALLER_ARN}, "Action": "kms:*", "Resource": "*"}
    ]
    assert create_plan(caller_admin).blocked == ()


def test_lockout_bypass_needs_both_the_manifest_and_the_flag() -> None:
    flag = GateOptions(bypass_policy_lockout_safety_check=True)
    assert rules(create_plan(lockout_policy(), flag)) == ["lockout"]
    assert rules(create_plan(lockout_policy(), bypass_policy_lockout_safety_check=True)) == [
        "lockout"
    ]
    both = create_plan(lockout_policy(), flag, bypass_policy_lockout_safety_check=True)
    assert both.blocked == ()
    assert both.calls[0].params["BypassPolicyLockoutSafetyCheck"] is True


def test_policy_update_that_locks_out_is_blocked() -> None:
    want = desired_key("orders", policy=lockout_policy())
    live = live_state(live_key(want, policy=admin_policy()))
    [c] = diff(stack(want), live, GateOptions(), now=NOW).changes
    assert c.calls[0].operation == "PutKeyPolicy"
    assert rules(c) == ["lockout"]
    assert c.blocked[0].reason.startswith("key.orders: PutKeyPolicy: the policy would lock out")


# ---- principals -------------------------------------------------------------------------------

GHOST = f"arn:aws:iam::{ACCOUNT}:role/ghost"


def test_missing_principal_in_a_policy_blocks_the_change() -> None:
    key = desired_key("orders", policy=user_policy(GHOST))
    live = dataclasses.replace(live_state(), principals={GHOST: False})
    [c] = diff(stack(key), live, GateOptions(), now=NOW).changes
    assert rules(c) == ["principal-missing"]
    assert c.blocked[0].reason == (
        f"key.orders: {GHOST} does not exist; KMS would reject the key policy"
    )
    assert c.blocked[0].unblock == f"create {GHOST} first, or remove it from the manifest"


def test_missing_grantee_blocks_the_grant_and_unknown_does_not() -> None:
    key = desired_key("orders", grants=[grant("g", grantee=GHOST)])
    live = dataclasses.replace(live_state(), principals={GHOST: False})
    plan = diff(stack(key), live, GateOptions(), now=NOW)
    [g] = [c for c in plan.changes if c.address == "grant.orders.g"]
    assert rules(g) == ["principal-missing"]
    assert "KMS would reject the grant" in g.blocked[0].reason
    unknown = dataclasses.replace(live_state(), principals={GHOST: None})
    assert all(not c.blocked for c in diff(stack(key), unknown, GateOptions(), now=NOW).changes)


def test_unique_id_principal_in_a_live_policy_is_a_warning() -> None:
    orphaned = user_policy("AROAEXAMPLEID12345678")
    want = desired_key("orders")
    live = live_state(live_key(want, policy=orphaned))
    plan = diff(stack(want), live, GateOptions(), now=NOW)
    assert plan.changes == ()
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith(
        "key.orders: the live policy names AROAEXAMPLEID12345678, an IAM unique id"
    )


def test_usage_error_detail_is_shown_on_one_line() -> None:
    html = LastUsage(
        known=False, detail="GetKeyLastUsage failed: 500: <html>\n<title>500</title>\n"
    )
    c = deletion_plan(usage=html)
    assert c.blocked[0].reason == (
        "key.legacy: the key's last cryptographic use is unknown: "
        "GetKeyLastUsage failed: 500: <html> <title>500</title>"
    )
