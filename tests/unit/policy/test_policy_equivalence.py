"""Equivalence: every rewrite IAM reads the same compares equal; every change of meaning is
caught."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from kmsplan.policy import differs_only_in_labels, equivalent, normalize

ROOT = "arn:aws:iam::111122223333:root"
APP = "arn:aws:iam::111122223333:role/app"


def base() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Id": "key-policy",
        "Statement": [
            {
                "Sid": "Admin",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Use",
                "Effect": "Allow",
                "Principal": {"AWS": [APP]},
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": [
                            "s3.eu-west-1.amazonaws.com",
                            "sqs.eu-west-1.amazonaws.com",
                        ]
                    },
                    "Bool": {"aws:SecureTransport": "true"},
                },
            },
            {
                "Sid": "Public",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "kms:DescribeKey",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}},
            },
        ],
    }


Edit = Callable[[dict[str, Any]], None]


def _stmt(doc: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in doc["Statement"] if s["Sid"] == sid)


def _set(sid: str, element: str, value: Any) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        _stmt(doc, sid)[element] = value

    return edit


def _rename(sid: str, old: str, new: str) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        stmt = _stmt(doc, sid)
        stmt[new] = stmt.pop(old)

    return edit


def _condition(sid: str, condition: dict[str, Any]) -> Edit:
    return _set(sid, "Condition", condition)


def _reverse_statements(doc: dict[str, Any]) -> None:
    doc["Statement"].reverse()


def _duplicate_statement(doc: dict[str, Any]) -> None:
    doc["Statement"].append(copy.deepcopy(doc["Statement"][0]))


EQUIVALENT: list[tuple[str, Edit]] = [
    ("statement order", _reverse_statements),
    ("string vs one-element list: Action", _set("Admin", "Action", ["kms:*"])),
    ("string vs one-element list: Resource", _set("Use", "Resource", ["*"])),
    ("string vs one-element list: Principal", _set("Admin", "Principal", {"AWS": [ROOT]})),
    ("list vs string: Principal AWS", _set("Use", "Principal", {"AWS": APP})),
    ("action case", _set("Use", "Action", ["KMS:decrypt", "kms:ENCRYPT", "kms:generatedatakey*"])),
    (
        "action list order",
        _set("Use", "Action", ["kms:GenerateDataKey*", "kms:Encrypt", "kms:Decrypt"]),
    ),
    (
        "duplicate actions",
        _set(
            "Use", "Action", ["kms:Decrypt", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"]
        ),
    ),
    ("account id vs root ARN", _set("Admin", "Principal", {"AWS": "111122223333"})),
    ("* vs AWS *", _set("Public", "Principal", {"AWS": "*"})),
    ("* vs AWS [*]", _set("Public", "Principal", {"AWS": ["*"]})),
    (
        "condition value order",
        _condition(
            "Use",
            {
                "StringEquals": {
                    "kms:ViaService": ["sqs.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com"]
                },
                "Bool": {"aws:SecureTransport": "true"},
            },
        ),
    ),
    (
        "bool vs string, key case, operator order",
        _condition(
            "Use",
            {
                "Bool": {"AWS:securetransport": True},
                "StringEquals": {
                    "KMS:VIASERVICE": ["s3.eu-west-1.amazonaws.com", "sqs.eu-west-1.amazonaws.com"]
                },
            },
        ),
    ),
    (
        "duplicate condition values",
        _condition(
            "Use",
            {
                "StringEquals": {
                    "kms:ViaService": [
                        "s3.eu-west-1.amazonaws.com",
                        "sqs.eu-west-1.amazonaws.com",
                        "s3.eu-west-1.amazonaws.com",
                    ]
                },
                "Bool": {"aws:SecureTransport": ["true"]},
            },
        ),
    ),
    (
        "number vs string condition value",
        _condition("Public", {"StringEquals": {"kms:CallerAccount": 111122223333}}),
    ),
    ("duplicate statement", _duplicate_statement),
]


DIFFERENT: list[tuple[str, Edit]] = [
    ("effect flipped", _set("Use", "Effect", "Deny")),
    (
        "action added",
        _set(
            "Use",
            "Action",
            ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
        ),
    ),
    ("action removed", _set("Use", "Action", ["kms:Decrypt", "kms:Encrypt"])),
    ("action wildcard widened", _set("Admin", "Action", "*")),
    (
        "principal changed",
        _set("Use", "Principal", {"AWS": "arn:aws:iam::111122223333:role/other"}),
    ),
    (
        "principal ARN case (ARNs are case-sensitive)",
        _set("Use", "Principal", {"AWS": APP.upper()}),
    ),
    ("root of another account", _set("Admin", "Principal", {"AWS": "444455556666"})),
    ("principal type", _set("Use", "Principal", {"Service": APP})),
    ("public instead of a role", _set("Use", "Principal", "*")),
    ("Principal vs NotPrincipal", _rename("Use", "Principal", "NotPrincipal")),
    ("Action vs NotAction", _rename("Use", "Action", "NotAction")),
    ("Resource vs NotResource", _rename("Use", "Resource", "NotResource")),
    ("resource changed", _set("Admin", "Resource", "arn:aws:kms:eu-west-1:111122223333:key/abc")),
    (
        "condition value changed",
        _condition("Public", {"StringEquals": {"kms:CallerAccount": "444455556666"}}),
    ),
    (
        "condition value case (StringEquals is case-sensitive)",
        _condition(
            "Use",
            {
                "StringEquals": {
                    "kms:ViaService": ["S3.eu-west-1.amazonaws.com", "sqs.eu-west-1.amazonaws.com"]
                },
                "Bool": {"aws:SecureTransport": "true"},
            },
        ),
    ),
    (
        "condition operator changed",
        _condition("Public", {"StringLike": {"kms:CallerAccount": "111122223333"}}),
    ),
    (
        "condition operator case (kept as written)",
        _condition("Public", {"stringequals": {"kms:CallerAccount": "111122223333"}}),
    ),
    ("condition removed", _set("Public", "Condition", {})),
    ("condition value dropped", _condition("Use", {"Bool": {"aws:SecureTransport": "true"}})),
    ("version changed", lambda doc: doc.__setitem__("Version", "2008-10-17")),
    ("statement removed", lambda doc: doc["Statement"].pop()),
]


@pytest.mark.parametrize(("name", "edit"), EQUIVALENT, ids=[n for n, _ in EQUIVALENT])
def test_rewrites_with_the_same_meaning_are_equivalent(name: str, edit: Edit) -> None:
    variant = base()
    edit(variant)
    assert equivalent(base(), variant)
    assert equivalent(variant, base())
    assert equivalent(json.dumps(variant), json.dumps(base(), indent=2))
    assert normalize(variant, labels=False) == normalize(base(), labels=False)


@pytest.mark.parametrize(("name", "edit"), DIFFERENT, ids=[n for n, _ in DIFFERENT])
def test_changes_of_meaning_are_not_equivalent(name: str, edit: Edit) -> None:
    variant = base()
    edit(variant)
    assert not equivalent(base(), variant)
    assert not equivalent(variant, base())
    assert not differs_only_in_labels(base(), variant)


def test_all_rewrites_at_once_are_still_equivalent() -> None:
    variant = base()
    for _, edit in EQUIVALENT:
        edit(variant)
    assert equivalent(base(), variant)


def test_absent_version_is_2008_10_17() -> None:
    old = base()
    old["Version"] = "2008-10-17"
    absent = base()
    del absent["Version"]
    assert equivalent(old, absent)
    assert not equivalent(base(), absent)
    assert normalize(absent)["Version"] == "2008-10-17"


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_account_id_is_the_root_of_the_documents_partition(partition: str) -> None:
    resource = f"arn:{partition}:kms:region-1:111122223333:key/abc"
    by_arn = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::111122223333:root"},
                "Action": "kms:*",
                "Resource": resource,
            }
        ],
    }
    by_id = copy.deepcopy(by_arn)
    by_id["Statement"][0]["Principal"] = {"AWS": "111122223333"}
    by_id["Statement"][0]["Resource"] = "*"
    by_arn["Statement"][0]["Resource"] = "*"
    # The partition comes from either document when only one of them names it.
    assert equivalent(by_arn, by_id)
    assert normalize(by_id, partition=partition) == normalize(by_arn)


def test_root_arn_of_another_partition_is_not_the_account_id_in_aws() -> None:
    by_id = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "111122223333"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
    }
    cn = copy.deepcopy(by_id)
    cn["Statement"][0]["Principal"] = {"AWS": "arn:aws-cn:iam::111122223333:root"}
    assert not equivalent(by_id, cn, partition="aws")


def test_sid_and_id_are_labels_not_meaning() -> None:
    renamed = base()
    renamed["Id"] = "other"
    _stmt(renamed, "Use")["Sid"] = "UseRenamed"
    assert equivalent(base(), renamed)
    assert differs_only_in_labels(base(), renamed)
    assert normalize(base()) != normalize(renamed)


def test_statement_order_alone_is_no_difference_at_all() -> None:
    reordered = base()
    reordered["Statement"].reverse()
    assert equivalent(base(), reordered)
    assert not differs_only_in_labels(base(), reordered)
    assert normalize(base()) == normalize(reordered)


def test_sids_swapped_between_statements_is_a_label_change() -> None:
    swapped = base()
    _stmt(swapped, "Admin")["Sid"] = "tmp"
    _stmt(swapped, "Use")["Sid"] = "Admin"
    _stmt(swapped, "tmp")["Sid"] = "Use"
    assert equivalent(base(), swapped)
    assert differs_only_in_labels(base(), swapped)


def test_normalized_document_is_canonical_json() -> None:
    doc = {
        "Statement": {
            "Sid": "S",
            "Effect": "Allow",
            "Principal": {"AWS": ["111122223333", "arn:aws:iam::111122223333:role/b"]},
            "Action": "KMS:put*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:securetransport": True}},
        }
    }
    assert normalize(doc) == {
        "Version": "2008-10-17",
        "Statement": [
            {
                "Sid": "S",
                "Effect": "Allow",
                "Principal": {
                    "AWS": ["arn:aws:iam::111122223333:role/b", "arn:aws:iam::111122223333:root"]
                },
                "Action": ["kms:Put*"],
                "Resource": ["*"],
                "Condition": {"Bool": {"aws:SecureTransport": ["true"]}},
            }
        ],
    }
