"""The table of AWS operations and the IAM policies built from it: the policies allow exactly
the table's operations, scope every write to the stack's keys, and kmsplan's code calls no
operation the table does not list."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from kmsplan.aws.operations import IAM_PREFIX, OPERATIONS, Access, Resource
from kmsplan.aws.permissions import allowed_actions, policy
from kmsplan.cli import main
from kmsplan.model import Role, Stack

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "kmsplan"
STACK_KEY = "aws:ResourceTag/kmsplan:stack"
REQUEST_KEY = "aws:RequestTag/kmsplan:stack"

READS = {op.iam_action for op in OPERATIONS if op.access is Access.READ}
ALL = {op.iam_action for op in OPERATIONS if op.access in (Access.READ, Access.WRITE)}
# Allowed only for the stack locks the manifests name (test_the_apply_policy_allows_the_locks).
LOCKS = {op.iam_action for op in OPERATIONS if op.access is Access.LOCK}


def statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


# ---- the table -----------------------------------------------------------------------------


def test_every_operation_in_the_table_exists_in_its_service() -> None:
    session = botocore.session.get_session()
    for op in OPERATIONS:
        assert op.name in session.get_service_model(op.service).operation_names, op


def test_the_table_lists_each_operation_once_and_every_applier_write_as_a_write() -> None:
    from kmsplan.apply import WRITE_OPERATIONS

    names = [(op.service, op.name) for op in OPERATIONS]
    assert len(names) == len(set(names))
    writes = {op.name for op in OPERATIONS if op.access is Access.WRITE}
    assert writes == set(WRITE_OPERATIONS)


# ---- the policies cover exactly the table ----------------------------------------------------


@pytest.mark.parametrize("stacks", [(), (Stack(name="a"),)], ids=["any-stack", "one-stack"])
def test_the_plan_policy_allows_exactly_the_reads(stacks: tuple[Stack, ...]) -> None:
    document = policy("plan", stacks)
    assert allowed_actions(document) == READS
    assert not any(a.endswith(("Create", "Put", "Schedule")) for a in allowed_actions(document))


@pytest.mark.parametrize("stacks", [(), (Stack(name="a"),)], ids=["any-stack", "one-stack"])
def test_the_apply_policy_allows_exactly_every_operation(stacks: tuple[Stack, ...]) -> None:
    document = policy("apply", stacks)
    assert allowed_actions(document) == ALL
    assert READS < ALL
    # Assuming a stack's role is for the credentials the run starts with, not for the role.
    assert "sts:AssumeRole" not in ALL
    assert {op.iam_action for op in OPERATIONS} == ALL | {"sts:AssumeRole"} | LOCKS


@pytest.mark.parametrize("kind", ["plan", "apply"])
def test_no_policy_allows_a_wildcard_action(kind: str) -> None:
    for statement in policy(kind, (Stack(name="a"),))["Statement"]:
        for action in as_list(statement["Action"]):
            assert "*" not in action and action.split(":")[0] in IAM_PREFIX.values(), action
        assert statement["Effect"] == "Allow"


def test_the_apply_policy_allows_the_locks_the_manifests_name_and_no_other() -> None:
    stacks = (
        Stack(name="a", account="111122223333", region="eu-west-1", lock="s3://locks/ci"),
        Stack(name="b", lock="dynamodb://tf-locks"),
        Stack(name="c"),
    )

    apply_policy = statements(policy("apply", stacks))
    plan_policy = policy("plan", stacks)

    assert apply_policy["StackLockObjects"] == {
        "Sid": "StackLockObjects",
        "Effect": "Allow",
        "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
        "Resource": "arn:aws:s3:::locks/ci/111122223333/eu-west-1/a.lock",
    }
    assert apply_policy["StackLockTables"] == {
        "Sid": "StackLockTables",
        "Effect": "Allow",
        "Action": ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"],
        "Resource": "arn:aws:dynamodb:*:*:table/tf-locks",
    }
    assert allowed_actions(policy("apply", stacks)) == ALL | LOCKS
    assert not allowed_actions(plan_policy) & LOCKS


def test_every_write_is_scoped_to_the_stacks_keys() -> None:
    document = policy("apply", (Stack(name="a", account="111122223333", region="eu-west-1"),))
    writes = {op.iam_action for op in OPERATIONS if op.access is Access.WRITE}
    by_sid = statements(document)
    for statement in document["Statement"]:
        if not set(as_list(statement["Action"])) & writes:
            continue
        condition = statement.get("Condition", {})
        if statement["Sid"] == "Aliases":
            # The alias resource has no tags; the key side of each alias call is scoped.
            assert statement["Resource"] == "arn:aws:kms:eu-west-1:111122223333:alias/*"
            continue
        tags = {**condition.get("StringEquals", {})}
        assert tags.get(STACK_KEY) == "a" or tags.get(REQUEST_KEY) == "a", statement
    keys = by_sid["WriteStackKeys"]
    assert keys["Resource"] == "arn:aws:kms:eu-west-1:111122223333:key/*"
    assert keys["Condition"] == {"StringEquals": {STACK_KEY: "a"}}
    alias_ops = {op.iam_action for op in OPERATIONS if op.resource is Resource.ALIAS}
    assert alias_ops <= set(keys["Action"])
    assert by_sid["CreateStackKeys"] == {
        "Sid": "CreateStackKeys",
        "Effect": "Allow",
        "Action": ["kms:CreateKey"],
        "Resource": "*",
        "Condition": {"StringEquals": {REQUEST_KEY: "a", "aws:RequestedRegion": "eu-west-1"}},
    }
    # A new key's ownership tags, never another stack's key retagged into this one.
    assert by_sid["TagNewStackKeys"]["Condition"] == {
        "StringEquals": {REQUEST_KEY: "a"},
        "Null": {STACK_KEY: "true"},
    }


def test_without_paths_writes_are_scoped_to_keys_of_some_kmsplan_stack() -> None:
    by_sid = statements(policy("apply"))
    assert by_sid["WriteStackKeys"]["Condition"] == {"Null": {STACK_KEY: "false"}}
    assert by_sid["CreateStackKeys"]["Condition"] == {"Null": {REQUEST_KEY: "false"}}
    assert by_sid["WriteStackKeys"]["Resource"] == "arn:aws:kms:*:*:key/*"


def test_stacks_in_several_accounts_and_regions_get_a_scope_each() -> None:
    stacks = (
        Stack(name="b", region="us-east-1", role=Role(arn="arn:aws:iam::222233334444:role/x")),
        Stack(name="a", account="111122223333", region="eu-west-1"),
        Stack(name="c", account="111122223333", region="eu-west-1"),
    )
    by_sid = statements(policy("apply", stacks))
    assert by_sid["WriteStackKeys1"]["Resource"] == "arn:aws:kms:eu-west-1:111122223333:key/*"
    assert by_sid["WriteStackKeys1"]["Condition"] == {"StringEquals": {STACK_KEY: ["a", "c"]}}
    # The account of a stack without account: is its role's.
    assert by_sid["WriteStackKeys2"]["Resource"] == "arn:aws:kms:us-east-1:222233334444:key/*"
    assert by_sid["WriteStackKeys2"]["Condition"] == {"StringEquals": {STACK_KEY: "b"}}
    assert by_sid["ReadKeys"]["Resource"] == [
        "arn:aws:kms:eu-west-1:111122223333:key/*",
        "arn:aws:kms:us-east-1:222233334444:key/*",
    ]
    assert by_sid["CheckPrincipals"]["Resource"] == [
        "arn:aws:iam::111122223333:role/*",
        "arn:aws:iam::111122223333:user/*",
        "arn:aws:iam::222233334444:role/*",
        "arn:aws:iam::222233334444:user/*",
    ]
    assert "WriteStackKeys3" not in by_sid


# ---- the command ---------------------------------------------------------------------------


def test_iam_policy_prints_a_policy_scoped_to_the_stacks_at_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\nstack: a\nregion: eu-west-1\nkeys: {}\n")
    (tmp_path / "b.yaml").write_text("version: 1\nstack: b\nregion: eu-west-1\nkeys: {}\n")
    assert main(["iam-policy", "--for", "apply", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert document == policy(
        "apply", (Stack(name="a", region="eu-west-1"), Stack(name="b", region="eu-west-1"))
    )
    assert statements(document)["WriteStackKeys"]["Condition"] == {
        "StringEquals": {STACK_KEY: ["a", "b"]}
    }
    assert err == ""


def test_iam_policy_for_plan_without_paths_is_the_read_only_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["iam-policy", "--for", "plan"]) == 0
    assert json.loads(capsys.readouterr().out) == policy("plan")


def test_iam_policy_refuses_an_unknown_role_kind_and_bad_manifests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["iam-policy", "--for", "deploy"]) == 1
    assert "'deploy' is not one of 'plan', 'apply'" in capsys.readouterr().err
    bad = tmp_path / "m.yaml"
    bad.write_text("version: 1\nstack: 'no spaces'\nkeys: {}\n")
    assert main(["iam-policy", "--for", "apply", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{bad}:2:8: error: stack:" in err


# ---- kmsplan calls nothing the table does not list ------------------------------------------

# Modules that name operations without calling them against AWS: the table itself; the
# request quotas (a rate for every KMS operation, called or not); KMS facts, policy analysis,
# lint and rendering, which name KMS actions as data and may not import what calls AWS
# (tests/test_architecture.py); and what runs against the local emulator only (`kmsplan
# local-kms` seeding the emulator it starts, the demo's envelope-encryption round trip).
NOT_CALLERS = (
    "kmsplan/aws/operations.py",
    "kmsplan/aws/quotas.py",
    "kmsplan/kmsspec.py",
    "kmsplan/policy/",
    "kmsplan/lint/",
    "kmsplan/render/",
    "kmsplan/local_kms.py",
    "kmsplan/commands/demo.py",
    "kmsplan/envelope.py",
)
# Services whose operations kmsplan might call (those of the table, and those a stack lock
# would use): an operation of any of them named in the code must be in the table.
SCANNED_SERVICES = ("kms", "sts", "iam", "resourcegroupstaggingapi", "s3", "dynamodb")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def operations_named_in_code() -> dict[str, set[str]]:
    """Operation (or boto3 method) names of the scanned services that kmsplan's code names:
    string constants and attribute names. operation -> the modules naming it."""
    session = botocore.session.get_session()
    known: dict[str, str] = {}
    for service in SCANNED_SERVICES:
        for name in session.get_service_model(service).operation_names:
            known[name] = name
            if "_" in _snake(name):  # one-word methods ("scan") are too common a word
                known[_snake(name)] = name
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(NOT_CALLERS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            word = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                word = node.value
            elif isinstance(node, ast.Attribute):
                word = node.attr
            if word in known:
                found.setdefault(known[word], set()).add(rel)
    return found


def test_kmsplan_names_no_aws_operation_that_is_not_in_the_table() -> None:
    listed = {op.name for op in OPERATIONS}
    named = operations_named_in_code()
    missing = {op: sorted(where) for op, where in named.items() if op not in listed}
    assert not missing, (
        f"kmsplan calls AWS operations the table in kmsplan/aws/operations.py does not list "
        f"(add a row, so that `kmsplan iam-policy` allows them): {missing}"
    )


def test_the_code_scan_finds_the_operations_kmsplan_calls() -> None:
    named = operations_named_in_code()
    # Read through call()/paginate(), written through the applier, named by the differ.
    for op in (
        "GetCallerIdentity",
        "GetResources",
        "ListResourceTags",
        "GetRole",
        "CreateKey",
        "ScheduleKeyDeletion",
        "CreateGrant",
        "UpdateAlias",
    ):
        assert op in named, op
