"""Multi-Region keys against the local emulator: a primary and its replicas from one
declaration, applied in dependency order, each Region with its own aliases."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.integration.apply_support import ACCOUNT, kmsplan, tags_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi-region.yaml"
PRIMARY, EU, AP = "us-east-1", "eu-west-1", "ap-southeast-2"


def kms(endpoint: str, region: str) -> Any:
    return boto3.client("kms", endpoint_url=endpoint, region_name=region)


def customer_aliases(endpoint: str, region: str) -> dict[str, str]:
    listed = kms(endpoint, region).list_aliases()["Aliases"]
    return {
        a["AliasName"]: a.get("TargetKeyId", "")
        for a in listed
        if not a["AliasName"].startswith("alias/aws/")
    }


def orders_key_id(endpoint: str) -> str:
    client = kms(endpoint, PRIMARY)
    for entry in client.list_keys()["Keys"]:
        if tags_of(client, entry["KeyId"]).get("kmsplan:key") == "orders":
            return str(entry["KeyId"])
    raise AssertionError("no orders key")


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    copy = tmp_path / "multi-region.yaml"
    shutil.copy(EXAMPLE, copy)
    return copy


@pytest.fixture
def applied(manifest: Path, endpoint: str, capsys: pytest.CaptureFixture[str]) -> Path:
    code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 0, out + err
    return manifest


def test_a_primary_and_two_replicas_apply_each_with_its_own_aliases(
    applied: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = orders_key_id(endpoint)

    primary = kms(endpoint, PRIMARY).describe_key(KeyId=key_id)["KeyMetadata"]
    config = primary["MultiRegionConfiguration"]
    assert config["MultiRegionKeyType"] == "PRIMARY"
    assert sorted(r["Region"] for r in config["ReplicaKeys"]) == [AP, EU]
    # Every Region has exactly its own aliases, all on the one key id.
    assert customer_aliases(endpoint, PRIMARY) == {"alias/orders": key_id}
    assert customer_aliases(endpoint, EU) == {"alias/orders": key_id, "alias/orders-eu": key_id}
    assert customer_aliases(endpoint, AP) == {"alias/orders": key_id}
    for region in (EU, AP):
        replica = kms(endpoint, region).describe_key(KeyId=key_id)["KeyMetadata"]
        assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
        assert replica["KeyState"] == "Enabled"
    eu = kms(endpoint, EU)
    assert eu.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == (
        "Orders table key (global table)"
    )
    ap = kms(endpoint, AP)
    assert ap.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == (
        "Orders table key (Sydney replica)"
    )
    # The replicas carry the ownership tags, and their own (or the primary's) user tags.
    assert tags_of(ap, key_id)["region-team"] == "apac"
    assert tags_of(eu, key_id)["kmsplan:stack"] == "global-orders"
    assert tags_of(eu, key_id)["kmsplan:key"] == "orders"
    assert "region-team" not in tags_of(eu, key_id)
    # ${region} in a replica's policy is the replica's Region.
    policy = eu.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert "dynamodb.eu-west-1.amazonaws.com" in policy
    assert ACCOUNT in policy

    code, out, _ = kmsplan(capsys, endpoint, "plan", str(applied), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (0, "No changes. KMS matches the manifests."), out


def test_the_plan_shows_replicas_and_regional_aliases_as_their_own_changes(
    manifest: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(manifest), "--detailed-exitcode")

    assert code == 2, out
    assert "replica.orders.eu-west-1" in out
    assert "replica.orders.ap-southeast-2" in out
    assert "alias.alias/orders-eu@eu-west-1" in out
    assert kms(endpoint, EU).list_keys()["Keys"] == []


def test_removing_a_protected_replica_is_blocked(
    applied: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = orders_key_id(endpoint)
    text = applied.read_text(encoding="utf-8")
    without_ap = text[: text.index("      ap-southeast-2:")]
    applied.write_text(without_ap, encoding="utf-8")

    flags = ("--auto-approve", "--allow-delete", "--ignore-usage")
    code, _, err = kmsplan(capsys, endpoint, "apply", str(applied), *flags)

    assert code == 1
    assert "replica.orders.ap-southeast-2" in err and "deletion-protection" in err
    assert kms(endpoint, AP).describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert customer_aliases(endpoint, AP) == {"alias/orders": key_id}


def test_an_unprotected_replica_is_deleted_through_the_gate(
    applied: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = orders_key_id(endpoint)
    text = applied.read_text(encoding="utf-8")
    applied.write_text(
        text.replace(
            "    rotation: {enabled: true}\n",
            "    rotation: {enabled: true}\n    deletion: {protected: false}\n",
        ),
        encoding="utf-8",
    )
    code, out, err = kmsplan(capsys, endpoint, "apply", str(applied), "--auto-approve")
    assert code == 0, out + err
    text = applied.read_text(encoding="utf-8")
    applied.write_text(text[: text.index("      ap-southeast-2:")], encoding="utf-8")

    code, _, err = kmsplan(capsys, endpoint, "apply", str(applied), "--auto-approve")
    assert code == 1 and "--allow-delete" in err
    code, out, err = kmsplan(
        capsys,
        endpoint,
        "apply",
        str(applied),
        "--auto-approve",
        "--allow-delete",
        "--ignore-usage",
    )

    assert code == 0, out + err
    state = kms(endpoint, AP).describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
    assert state == "PendingDeletion"
    assert customer_aliases(endpoint, AP) == {}
    assert kms(endpoint, PRIMARY).describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == (
        "Enabled"
    )


def test_removing_the_primary_while_replicas_exist_is_blocked_with_the_reason(
    applied: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = orders_key_id(endpoint)
    applied.write_text(
        "version: 1\nstack: global-orders\nregion: us-east-1\nkeys: {}\n", encoding="utf-8"
    )

    flags = ("--allow-delete", "--ignore-usage", "--detailed-exitcode")
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(applied), *flags)

    assert code == 3, out
    assert "key.orders" in out
    assert "replicas in ap-southeast-2, eu-west-1" in out
    assert "KMS deletes a primary only after its replicas" in out
    assert kms(endpoint, PRIMARY).describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == (
        "Enabled"
    )


def test_a_stack_with_a_role_reads_and_writes_its_replicas_in_the_roles_account(
    manifest: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The replicas' Regions are read with the stack's role, as its home Region is: with the
    run's base credentials they would be looked for in another account, and found missing."""
    other = "222233334444"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(
        text.replace("\nkeys:", f"\nrole: arn:aws:iam::{other}:role/x\nkeys:", 1),
        encoding="utf-8",
    )
    code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 0, out + err
    code, out, err = kmsplan(capsys, endpoint, "plan", str(manifest), "--detailed-exitcode")
    assert (code, err) == (0, ""), out + err
    assert customer_aliases(endpoint, EU) == {}  # nothing landed in the base account
