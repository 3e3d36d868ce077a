"""The lint engine: suppression, exit thresholds, the JSON form of a finding, locations,
`${account_id}` handling, live-only rules, and rule behaviour for every key spec."""

from __future__ import annotations

from typing import Any

import pytest

from kmsplan.kmsspec import USAGES_BY_SPEC
from kmsplan.lint.engine import fails, lint_stack
from kmsplan.lint.finding import Finding, Severity, finding_to_dict
from kmsplan.lint.rule import LintConfig
from kmsplan.model import (
    Deletion,
    Grant,
    Key,
    LintSuppression,
    Location,
    Rotation,
    Stack,
)

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    admin = {
        "Sid": "Admin",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::${account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return {"Version": "2012-10-17", "Statement": [admin, *statements]}


def _stack(*keys: Key, account: str | None = ACCOUNT) -> Stack:
    return Stack(name="s", account=account, keys=tuple(sorted(keys, key=lambda k: k.name)))


def _key(name: str = "k", **kwargs: Any) -> Key:
    kwargs.setdefault("rotation", Rotation(enabled=True))
    return Key(name=name, **kwargs)


def _ids(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.key) for f in findings]


def test_suppressed_finding_is_reported_marked_and_does_not_fail_the_run() -> None:
    key = _key(
        deletion=Deletion(protected=False),
        lint_disable=(LintSuppression(rule="kms011", reason="retiring it"),),
    )
    (finding,) = lint_stack(_stack(key))
    assert (finding.rule, finding.suppressed, finding.suppression_reason) == (
        "KMS011",
        True,
        "retiring it",
    )
    assert not fails([finding], Severity.INFO)


def test_suppression_of_one_rule_leaves_the_others_active() -> None:
    key = _key(
        rotation=Rotation(enabled=False),
        deletion=Deletion(protected=False),
        lint_disable=(LintSuppression(rule="KMS011", reason="retiring it"),),
    )
    findings = lint_stack(_stack(key))
    assert [(f.rule, f.suppressed) for f in findings] == [("KMS008", False), ("KMS011", True)]
    assert fails(findings, Severity.WARNING)


def test_mistyped_suppression_is_reported_and_leaves_the_finding_it_meant_active() -> None:
    key = _key(
        deletion=Deletion(protected=False),
        lint_disable=(
            LintSuppression(rule="KMS11", reason="retiring it"),
            LintSuppression(rule="kms011", reason="retiring it, spelled right"),
            LintSuppression(rule="KMS0011", reason="retiring it again"),
        ),
    )
    findings = lint_stack(_stack(key))
    assert [(f.rule, f.path, f.suppressed) for f in findings] == [
        ("KMS011", "keys.k.deletion.protected", True),
        ("KMS017", "keys.k.lint.disable[0].rule", False),
        ("KMS017", "keys.k.lint.disable[2].rule", False),
    ]
    assert findings[2].message == (
        "lint.disable of key 'k' names rule 'KMS0011', which kmsplan does not have "
        "(rules are KMS001 to KMS019): this entry suppresses nothing"
    )
    # A warning: it fails `--fail-on warning` but not the default `--fail-on error`.
    assert not fails(findings, Severity.ERROR)
    assert fails(findings, Severity.WARNING)


def test_unknown_suppression_alone_suppresses_nothing() -> None:
    key = _key(
        deletion=Deletion(protected=False),
        lint_disable=(LintSuppression(rule="KMS11", reason="retiring it"),),
    )
    assert [(f.rule, f.suppressed) for f in lint_stack(_stack(key))] == [
        ("KMS011", False),
        ("KMS017", False),
    ]


@pytest.mark.parametrize(
    ("severity", "threshold", "expected"),
    [
        (Severity.ERROR, Severity.ERROR, True),
        (Severity.WARNING, Severity.ERROR, False),
        (Severity.WARNING, Severity.WARNING, True),
        (Severity.INFO, Severity.WARNING, False),
        (Severity.INFO, Severity.INFO, True),
        (Severity.ERROR, None, False),
    ],
)
def test_fail_threshold_compares_severity_ranks(
    severity: Severity, threshold: Severity | None, expected: bool
) -> None:
    finding = Finding(rule="KMS999", severity=severity, title="t", key="k", message="m", path="p")
    assert fails([finding], threshold) is expected


def test_finding_to_dict_has_the_documented_members() -> None:
    finding = Finding(
        rule="KMS011",
        severity=Severity.WARNING,
        title="Deletion protection is off",
        key="orders",
        message="deletion protection is off",
        path="keys.orders.deletion.protected",
        location=Location(file="stack.yaml", line=12, column=20),
        suppressed=True,
        suppression_reason="retiring",
    )
    assert finding_to_dict(finding) == {
        "rule": "KMS011",
        "severity": "warning",
        "title": "Deletion protection is off",
        "message": "deletion protection is off",
        "key": "orders",
        "path": "keys.orders.deletion.protected",
        "location": {"file": "stack.yaml", "line": 12, "column": 20},
        "suppressed": True,
        "suppression_reason": "retiring",
    }
    unlocated = Finding(
        rule="KMS001", severity=Severity.ERROR, title="t", key="k", message="m", path="p"
    )
    assert finding_to_dict(unlocated)["location"] is None


def test_setting_inherited_from_defaults_is_located_in_the_defaults_block() -> None:
    defaults_at = Location(file="stack.yaml", line=4, column=23)
    key_at = Location(file="stack.yaml", line=8, column=3)
    key = _key(
        rotation=Rotation(enabled=False),
        location=key_at,
        source_map={"keys.k": key_at, "defaults.rotation.enabled": defaults_at},
    )
    (finding,) = lint_stack(_stack(key))
    assert finding.rule == "KMS008"
    assert finding.location == defaults_at


def test_without_any_source_map_the_key_location_is_used() -> None:
    key_at = Location(file="stack.yaml", line=8, column=3)
    (finding,) = lint_stack(_stack(_key(deletion=Deletion(window_days=7), location=key_at)))
    assert (finding.rule, finding.location) == ("KMS010", key_at)


def test_unknown_account_stands_in_for_account_id_and_messages_show_the_variable() -> None:
    policy = _policy(
        {
            "Sid": "App",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::${account_id}:role/app"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    (finding,) = lint_stack(_stack(_key(policy=policy), account=None))
    assert finding.rule == "KMS002"
    assert finding.message == (
        'Statement[1] ("App") allows "kms:*" (every KMS action, key policy and deletion '
        "included) to arn:aws:iam::${account_id}:role/app, not only to the account root"
    )


def test_account_given_by_the_caller_wins_over_an_undeclared_account() -> None:
    partner = _policy(
        {
            "Sid": "Partner",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        }
    )
    stack = _stack(_key(policy=partner), account=None)
    assert lint_stack(stack) == []  # "another account" cannot be told without one
    assert _ids(lint_stack(stack, account_id=ACCOUNT)) == [("KMS005", "k")]


def test_live_only_rule_runs_only_for_keys_with_a_live_policy() -> None:
    live = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "AROAEXAMPLEROLEID1234"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        }
    )
    stack = _stack(_key("a"), _key("b"))
    assert lint_stack(stack) == []
    assert _ids(lint_stack(stack, live_policies={"b": live})) == [("KMS016", "b")]


def test_keys_filter_lints_only_the_named_keys() -> None:
    stack = _stack(
        _key("a", rotation=Rotation(enabled=False)), _key("b", rotation=Rotation(enabled=False))
    )
    assert _ids(lint_stack(stack, keys=["b"])) == [("KMS008", "b")]


def test_rotation_maximum_is_configurable() -> None:
    stack = _stack(_key(rotation=Rotation(enabled=True, period_days=400)))
    assert _ids(lint_stack(stack)) == [("KMS009", "k")]
    assert lint_stack(stack, config=LintConfig(max_rotation_period_days=400)) == []


# ---- every key spec ------------------------------------------------------------------------

SPEC_USAGES = [(spec, usage) for spec, usages in USAGES_BY_SPEC.items() for usage in usages]


@pytest.mark.parametrize(("spec", "usage"), SPEC_USAGES)
def test_rotation_disabled_is_reported_only_for_keys_kms_can_rotate(spec: str, usage: str) -> None:
    key = _key(spec=spec, usage=usage, rotation=Rotation(enabled=False))
    rules = [f.rule for f in lint_stack(_stack(key)) if f.rule in ("KMS008", "KMS009")]
    expected = ["KMS008"] if (spec, usage) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT") else []
    assert rules == expected


def test_rotation_disabled_is_not_reported_for_imported_key_material() -> None:
    key = _key(origin="EXTERNAL", rotation=Rotation(enabled=False))
    assert lint_stack(_stack(key)) == []


@pytest.mark.parametrize(("spec", "usage"), SPEC_USAGES)
def test_unconstrained_grant_is_reported_only_where_kms_accepts_constraints(
    spec: str, usage: str
) -> None:
    grant = Grant(name="g", grantee=f"arn:aws:iam::{ACCOUNT}:role/g", operations=("DescribeKey",))
    key = _key(spec=spec, usage=usage, grants=(grant,))
    rules = [f.rule for f in lint_stack(_stack(key))]
    symmetric = (spec, usage) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert ("KMS013" in rules) is symmetric
    assert ("KMS014" in rules) is (spec == "RSA_2048" and usage == "ENCRYPT_DECRYPT")


# ---- policy edge cases ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        {"StringNotEquals": {"kms:CallerAccount": ACCOUNT}},
        {"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        {"StringLike": {"kms:CallerAccount": "*"}},
        {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        {"StringEquals": {"kms:EncryptionContext:app": "orders"}},
    ],
    ids=["negated", "if-exists", "wildcard-value", "for-all-values", "not-a-caller-key"],
)
def test_public_principal_with_a_condition_that_does_not_narrow_is_reported(
    condition: dict[str, Any],
) -> None:
    policy = _policy(
        {
            "Sid": "Public",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": condition,
        }
    )
    assert _ids(lint_stack(_stack(_key(policy=policy)))) == [("KMS001", "k")]


def test_lockout_is_reported_when_a_deny_takes_put_key_policy_from_everyone() -> None:
    policy = _policy(
        {
            "Sid": "NoPolicyChanges",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:PutKeyPolicy",
            "Resource": "*",
        }
    )
    assert _ids(lint_stack(_stack(_key(policy=policy)))) == [("KMS004", "k")]


def test_lockout_is_reported_when_the_only_administrator_is_conditional() -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ROOT},
                "Action": "kms:*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            }
        ],
    }
    assert _ids(lint_stack(_stack(_key(policy=policy)))) == [("KMS004", "k")]


def test_key_without_a_policy_gets_the_default_policy_and_no_policy_findings() -> None:
    assert lint_stack(_stack(_key(policy=None))) == []


def test_unparseable_policy_is_left_to_the_validator() -> None:
    assert lint_stack(_stack(_key(policy={"Statement": "nonsense"}))) == []


def test_create_grant_through_a_pattern_is_reported() -> None:
    policy = _policy(
        {
            "Sid": "Admins",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/admin"},
            "Action": ["kms:Create*", "kms:Describe*"],
            "Resource": "*",
        }
    )
    assert _ids(lint_stack(_stack(_key(policy=policy)))) == [("KMS006", "k")]


def test_grant_with_retire_grant_names_both_consequences() -> None:
    grant = Grant(
        name="g",
        grantee=f"arn:aws:iam::{ACCOUNT}:role/g",
        operations=("CreateGrant", "Decrypt", "RetireGrant"),
    )
    findings = [f for f in lint_stack(_stack(_key(grants=(grant,)))) if f.rule == "KMS012"]
    assert [f.message for f in findings] == [
        f"grant 'g' to arn:aws:iam::{ACCOUNT}:role/g includes CreateGrant and RetireGrant: the "
        "grantee can create further grants and pass its access on without a policy change; "
        "the grantee can retire grants"
    ]
