"""Principals named in a policy: for the plan-time existence and unique-id checks."""

from __future__ import annotations

from typing import Any

from kmsplan.policy.principals import (
    is_unique_id,
    principals_in,
    same_account_iam_principals,
    unique_id_principals,
)

DOC: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "111122223333"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Principal": {
                "AWS": [
                    "arn:aws:iam::111122223333:role/team/app",
                    "arn:aws:iam::111122223333:user/alice",
                    "arn:aws:iam::444455556666:role/partner",
                    "AROAEXAMPLEROLEID12345",
                    "AIDAJQABLZS4A3QDU576Q",
                ],
                "Service": "logs.amazonaws.com",
            },
            "Action": "kms:Decrypt",
            "Resource": "*",
        },
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": "arn:aws:sts::111122223333:assumed-role/x/y"},
            "Action": "kms:ScheduleKeyDeletion",
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": {"StringLike": {"aws:userid": "AROAEXAMPLEROLEID99999:*"}},
        },
    ],
}


def test_principals_in_lists_every_aws_principal_canonically() -> None:
    assert principals_in(DOC) == {
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:role/team/app",
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::444455556666:role/partner",
        "AROAEXAMPLEROLEID12345",
        "AIDAJQABLZS4A3QDU576Q",
        "arn:aws:sts::111122223333:assumed-role/x/y",
    }


def test_unique_ids_are_found_in_principals_only() -> None:
    # The aws:userid condition value is a legitimate use of a unique id, not a deleted role.
    assert unique_id_principals(DOC) == ["AIDAJQABLZS4A3QDU576Q", "AROAEXAMPLEROLEID12345"]


def test_unique_id_shape() -> None:
    assert is_unique_id("AROAEXAMPLEROLEID12345")
    assert is_unique_id("ASIA1234567890ABCDEF")
    assert not is_unique_id("AROA123")  # too short
    assert not is_unique_id("arn:aws:iam::111122223333:role/AROAEXAMPLEROLEID12345")
    assert not is_unique_id("AKIAIOSFODNN7EXAMPLE")  # an access key id, not a principal


def test_same_account_iam_principals_are_roles_and_users_of_that_account() -> None:
    assert same_account_iam_principals(DOC, "111122223333") == {
        "arn:aws:iam::111122223333:role/team/app",
        "arn:aws:iam::111122223333:user/alice",
    }
    assert same_account_iam_principals(DOC, "444455556666") == {
        "arn:aws:iam::444455556666:role/partner"
    }
    assert same_account_iam_principals(DOC, "999999999999") == set()
