"""The lockout check: who can still call kms:PutKeyPolicy under a new policy."""

from __future__ import annotations

from typing import Any

import pytest

from kmsplan.policy.lockout import can_manage, lockout_reason

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci-run-42"
APP = f"arn:aws:iam::{ACCOUNT}:role/app"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal: Any, action: Any = "kms:*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*", **extra}


def deny(principal: Any, action: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Principal": principal, "Action": action, "Resource": "*", **extra}


USE_ONLY = allow({"AWS": APP}, ["kms:Decrypt", "kms:Encrypt"])


def check(doc: dict[str, Any], caller: str = SESSION) -> tuple[bool, str | None]:
    principals = [ROOT, caller]
    return (
        can_manage(doc, principals, account_id=ACCOUNT),
        lockout_reason(doc, principals, account_id=ACCOUNT),
    )


@pytest.mark.parametrize(
    "doc",
    [
        policy(allow({"AWS": ROOT}), USE_ONLY),
        policy(allow({"AWS": ACCOUNT}, "kms:Put*")),
        policy(allow({"AWS": ROOT}, "*")),
        policy(allow({"AWS": ROOT}, "kms:putkeypolicy")),
        policy(allow({"AWS": DEPLOYER}, ["kms:PutKeyPolicy", "kms:DescribeKey"])),
        policy(allow({"AWS": f"arn:aws:iam::{ACCOUNT}:role/ci/deployer"})),  # role with a path
        policy(allow("*")),
        policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": ROOT},
                "NotAction": "kms:Decrypt",
                "Resource": "*",
            }
        ),
        # A Deny that does not cover the caller leaves its Allow alone.
        policy(allow({"AWS": ROOT}), deny({"AWS": APP}, "kms:*")),
        # A conditional Deny is not counted: it may never apply.
        policy(
            allow({"AWS": ROOT}),
            deny(
                "*", "kms:PutKeyPolicy", Condition={"Bool": {"aws:MultiFactorAuthPresent": "false"}}
            ),
        ),
        # "Deny everyone except the deployer" keeps the deployer.
        policy(
            allow({"AWS": DEPLOYER}),
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": DEPLOYER},
                "Action": "kms:*",
                "Resource": "*",
            },
        ),
    ],
    ids=[
        "root-kms-star",
        "account-id-put-star",
        "root-star",
        "action-case",
        "caller-role",
        "role-with-path",
        "public",
        "not-action",
        "deny-other",
        "conditional-deny",
        "deny-all-but-deployer",
    ],
)
def test_manageable_policies(doc: dict[str, Any]) -> None:
    assert check(doc) == (True, None)


def test_root_statement_removed_locks_out() -> None:
    manageable, reason = check(policy(USE_ONLY))
    assert not manageable
    assert reason == (
        f"the policy would lock out {ROOT}, {SESSION}: none of them could call "
        "kms:PutKeyPolicy afterwards (no statement allows kms:PutKeyPolicy (or kms:*) to them "
        "without conditions)"
    )


def test_deny_of_put_key_policy_locks_out() -> None:
    doc = policy(
        allow({"AWS": ROOT}),
        {**deny("*", "kms:PutKeyPolicy"), "Sid": "NoPolicyChanges"},
    )
    manageable, reason = check(doc)
    assert not manageable
    assert reason == (
        f"the policy would lock out {ROOT}, {SESSION}: none of them could call "
        'kms:PutKeyPolicy afterwards (Statement[1] (Sid "NoPolicyChanges") denies '
        f'kms:PutKeyPolicy to {ROOT}; Statement[1] (Sid "NoPolicyChanges") denies '
        f"kms:PutKeyPolicy to {SESSION})"
    )


def test_deny_to_the_account_root_covers_the_accounts_roles() -> None:
    doc = policy(allow({"AWS": DEPLOYER}), deny({"AWS": ACCOUNT}, "kms:Put*"))
    assert check(doc)[0] is False


def test_conditional_allow_does_not_count() -> None:
    doc = policy(
        {
            **allow({"AWS": ROOT}, Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
            "Sid": "AdminWithMfa",
        },
        USE_ONLY,
    )
    manageable, reason = check(doc)
    assert not manageable
    assert reason is not None
    assert reason.endswith(
        '(Statement[0] (Sid "AdminWithMfa") allows kms:PutKeyPolicy only under conditions, '
        "which cannot be known to hold at the next update)"
    )


def test_assumed_role_caller_counts_as_its_role() -> None:
    doc = policy(allow({"AWS": DEPLOYER}, "kms:PutKeyPolicy"))
    assert can_manage(doc, [SESSION], account_id=ACCOUNT)
    other_session = f"arn:aws:sts::{ACCOUNT}:assumed-role/other/s"
    # The account root is always considered, and it is not allowed here either.
    assert not can_manage(doc, [other_session], account_id=ACCOUNT)
    # The same role name in another account is another role.
    assert not can_manage(
        doc, ["arn:aws:sts::444455556666:assumed-role/deployer/s"], account_id="444455556666"
    )


def test_root_of_another_account_does_not_cover_the_caller() -> None:
    doc = policy(allow({"AWS": "444455556666"}))
    assert not can_manage(doc, [SESSION], account_id=ACCOUNT)


def test_statement_without_resource_has_no_effect() -> None:
    doc = policy({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*"})
    assert check(doc)[0] is False


def test_partition_of_the_policy_spells_the_root() -> None:
    doc = policy(
        allow({"AWS": "arn:aws-cn:iam::111122223333:root"}),
        {
            "Effect": "Allow",
            "Principal": {"AWS": ACCOUNT},
            "Action": "kms:Decrypt",
            "Resource": "arn:aws-cn:kms:cn-north-1:111122223333:key/abc",
        },
    )
    assert can_manage(doc, [], account_id=ACCOUNT)
