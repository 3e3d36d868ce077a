"""Parsing key policies into typed statements, and rejecting what is not a policy."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kmsplan.errors import ExitCode, PolicyError
from kmsplan.policy import canonical_action, canonical_principal, parse_policy
from kmsplan.policy.document import Condition, canonical_condition_key


def one(statement: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [statement]}


def allow(**elements: Any) -> dict[str, Any]:
    return one({"Effect": "Allow", "Principal": "*", "Resource": "*", **elements})


def test_statements_are_typed_and_canonical() -> None:
    policy = parse_policy(
        '{"Version": "2012-10-17", "Id": "p", "Statement": [{"Sid": "A", "Effect": "Deny",'
        ' "Principal": {"AWS": "111122223333", "Service": "logs.amazonaws.com"},'
        ' "NotAction": "KMS:decrypt", "Resource": "*",'
        ' "Condition": {"NumericLessThan": {"KMS:ScheduleKeyDeletionPendingWindowInDays": 30}}}]}'
    )
    assert policy.version == "2012-10-17"
    assert policy.id == "p"
    (statement,) = policy.statements
    assert statement.index == 0
    assert statement.sid == "A"
    assert statement.effect == "Deny"
    assert statement.principals is not None
    assert statement.principals.aws == frozenset({"arn:aws:iam::111122223333:root"})
    assert statement.principals.service == frozenset({"logs.amazonaws.com"})
    assert not statement.principals.is_public
    assert statement.actions is None
    assert statement.not_actions == frozenset({"kms:Decrypt"})
    assert statement.resources == frozenset({"*"})
    assert statement.conditions == frozenset(
        {
            Condition(
                operator="NumericLessThan",
                key="kms:ScheduleKeyDeletionPendingWindowInDays",
                values=frozenset({"30"}),
            )
        }
    )


def test_a_single_statement_object_is_a_list_of_one() -> None:
    policy = parse_policy({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:*"}})
    assert policy.version == "2008-10-17"
    assert len(policy.statements) == 1


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["*", "111122223333"]}])
def test_public_principals(principal: Any) -> None:
    (statement,) = parse_policy(allow(Principal=principal, Action="kms:*")).statements
    assert statement.principals is not None
    assert statement.principals.is_public
    assert statement.principals.aws == frozenset({"*"})


@pytest.mark.parametrize(
    ("actions", "query", "expected"),
    [
        ("kms:*", "kms:PutKeyPolicy", True),
        ("*", "kms:PutKeyPolicy", True),
        ("kms:Put*", "kms:PutKeyPolicy", True),
        ("kms:put*", "KMS:PUTKEYPOLICY", True),
        ("kms:putkeypolicy", "kms:PutKeyPolicy", True),
        ("kms:Get*", "kms:PutKeyPolicy", False),
        ("kms:PutKeyPolic?", "kms:PutKeyPolicy", True),
        ("kms:Encrypt", "kms:Encrypt*", False),
        (["kms:Decrypt", "kms:Encrypt"], "kms:Encrypt", True),
        ("kms:*", "kms:*", True),
        ("kms:Decrypt", "kms:*", False),
    ],
)
def test_allows_action_matches_wildcards_case_insensitively(
    actions: Any, query: str, expected: bool
) -> None:
    (statement,) = parse_policy(allow(Action=actions)).statements
    assert statement.allows_action(query) is expected
    assert statement.matches_action(query) is expected


def test_not_action_allows_everything_else() -> None:
    (statement,) = parse_policy(allow(NotAction=["kms:Put*", "kms:ScheduleKeyDeletion"])).statements
    assert statement.allows_action("kms:Decrypt")
    assert not statement.allows_action("kms:PutKeyPolicy")
    assert not statement.allows_action("kms:schedulekeydeletion")


def test_a_deny_statement_allows_nothing_but_matches() -> None:
    (statement,) = parse_policy(
        one({"Effect": "Deny", "Principal": "*", "Action": "kms:*"})
    ).statements
    assert not statement.allows_action("kms:Decrypt")
    assert statement.matches_action("kms:Decrypt")


def test_a_statement_without_action_applies_to_nothing() -> None:
    (statement,) = parse_policy(allow()).statements
    assert not statement.matches_action("kms:Decrypt")


@pytest.mark.parametrize(
    ("value", "partition", "expected"),
    [
        ("111122223333", "aws", "arn:aws:iam::111122223333:root"),
        ("111122223333", "aws-cn", "arn:aws-cn:iam::111122223333:root"),
        ("arn:aws:iam::111122223333:root", "aws", "arn:aws:iam::111122223333:root"),
        ("arn:aws:iam::111122223333:role/App", "aws", "arn:aws:iam::111122223333:role/App"),
        ("11112222333", "aws", "11112222333"),  # 11 digits: not an account id
        ("*", "aws", "*"),
    ],
)
def test_canonical_principal(value: str, partition: str, expected: str) -> None:
    assert canonical_principal(value, partition=partition) == expected


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("kms:encrypt", "kms:Encrypt"),
        ("KMS:ENCRYPT", "kms:Encrypt"),
        ("kms:put*", "kms:Put*"),
        ("kms:reencrypt*", "kms:ReEncrypt*"),
        ("kms:*", "kms:*"),
        ("*", "*"),
        ("kms:NoSuchAction", "kms:nosuchaction"),
        ("S3:GetObject", "s3:getobject"),
    ],
)
def test_canonical_action(action: str, expected: str) -> None:
    assert canonical_action(action) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("KMS:VIASERVICE", "kms:ViaService"),
        ("aws:sourceip", "aws:SourceIp"),
        ("kms:EncryptionContext:Department", "kms:EncryptionContext:department"),
        ("AWS:PrincipalTag/Team", "aws:PrincipalTag/team"),
        ("custom:Key", "custom:key"),
    ],
)
def test_canonical_condition_key(key: str, expected: str) -> None:
    assert canonical_condition_key(key) == expected


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            "{not json",
            "policy is not valid JSON: Expecting property name enclosed in double "
            "quotes at line 1 column 2",
        ),
        ("[]", "policy must be a JSON object, not a list"),
        (
            '{"Statement": [], "Statement": []}',
            'policy is not valid JSON: duplicate key "Statement"',
        ),
        (
            {"Version": "2012-10-17"},
            "Statement: missing (a key policy needs at least one statement)",
        ),
        (
            {"Version": "2020-01-01", "Statement": []},
            'Version: "2020-01-01" is not a policy language version '
            "(allowed: 2008-10-17, 2012-10-17)",
        ),
        (
            {"version": "2012-10-17", "Statement": []},
            'unknown policy element "version" (allowed: Version, Id, Statement; element names are '
            "case-sensitive)",
        ),
        (
            {"Statement": "x"},
            "Statement: must be a list of statements or one statement object, not a string",
        ),
        ({"Statement": [1]}, "Statement[0]: must be an object, not a number"),
        (
            one({"Effect": "allow"}),
            'Statement[0].Effect: "allow" (allowed: "Allow" or "Deny", case-sensitive)',
        ),
        (
            one({"Principal": "*"}),
            'Statement[0].Effect: missing (allowed: "Allow" or "Deny", case-sensitive)',
        ),
        (
            one({"Effect": "Allow", "Actions": "kms:*"}),
            'Statement[0]: unknown element "Actions" (allowed: Action, Condition, Effect, '
            "NotAction, NotPrincipal, NotResource, Principal, Resource, Sid; element names are "
            "case-sensitive)",
        ),
        (
            one({"Effect": "Allow", "Action": "kms:*", "NotAction": "kms:Decrypt"}),
            "Statement[0]: has both Action and NotAction (a statement may use only one)",
        ),
        (
            allow(Action="Decrypt"),
            'Statement[0].Action: "Decrypt" is not an action (allowed: '
            '"*" or "service:Action", e.g. "kms:Decrypt")',
        ),
        (
            allow(Action=["kms:Decrypt", 5]),
            "Statement[0].Action: must be a string or a list of strings, found a number",
        ),
        (
            allow(Principal="arn:aws:iam::111122223333:root"),
            'Statement[0].Principal: must be "*" or an object such as {"AWS": '
            '"arn:aws:iam::111122223333:root"}, not a string',
        ),
        (
            allow(Principal={"Aws": "*"}),
            'Statement[0].Principal: unknown principal type "Aws" '
            "(allowed: AWS, Service, Federated, CanonicalUser)",
        ),
        (
            allow(Condition={"StringEquals": "x"}),
            "Statement[0].Condition.StringEquals: must be an object of condition keys to values, "
            "not a string",
        ),
        (
            allow(Condition={"StringEquals": {"k": None}}),
            "Statement[0].Condition.StringEquals.k: a condition value must be a string, number "
            "or boolean, not null",
        ),
        (
            allow(Condition={"StringEquals": {"kms:ViaService": "a", "KMS:viaservice": "b"}}),
            "Statement[0].Condition.StringEquals.KMS:viaservice: condition key given twice under "
            "StringEquals (condition keys are case-insensitive)",
        ),
        (one({"Sid": 5, "Effect": "Allow"}), "Statement[0].Sid: must be a string, not a number"),
    ],
)
def test_invalid_documents_raise_policy_error(doc: Any, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(doc)
    assert str(caught.value) == message
    assert caught.value.exit_code is ExitCode.ERROR


def test_a_document_changed_after_parsing_is_parsed_again() -> None:
    doc = allow(Action="kms:Decrypt")
    assert parse_policy(doc).statements[0].actions == frozenset({"kms:Decrypt"})
    doc["Statement"][0]["Action"] = "kms:Encrypt"
    assert parse_policy(doc).statements[0].actions == frozenset({"kms:Encrypt"})


def test_a_parsed_policy_is_accepted_as_is() -> None:
    policy = parse_policy(allow(Action="kms:Decrypt"))
    assert parse_policy(policy) is policy


def test_a_yaml_date_version_is_reported_not_crashed_on() -> None:
    # YAML reads an unquoted `Version: 2012-10-17` as a date.
    with pytest.raises(PolicyError) as caught:
        parse_policy({"Version": datetime.date(2012, 10, 17), "Statement": []})
    assert str(caught.value) == (
        "Version: 2012-10-17 (date) is not a policy language version "
        "(allowed: 2008-10-17, 2012-10-17)"
    )
