"""`kmsplan plan` end to end against the moto KMS server (over HTTP on 127.0.0.1).

A "converged" stack is made here with boto3 directly, tagged exactly as kmsplan's CreateKey
tags keys, so these tests do not depend on the applier. Drift is then made out of band with
boto3 and the plan is read back as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from kmsplan.cli import main

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/orders-lambda"

MANIFEST = """\
version: 1
stack: payments
defaults:
  rotation: {enabled: true}
  tags: {team: payments}
keys:
  orders:
    description: Orders table encryption
    aliases: [alias/payments/orders]
    policy:
      Version: "2012-10-17"
      Statement:
        - Sid: AccountAdmin
          Effect: Allow
          Principal: {AWS: "arn:aws:iam::${account_id}:root"}
          Action: "kms:*"
          Resource: "*"
        - Sid: Lambda
          Effect: Allow
          Principal: {AWS: "arn:aws:iam::${account_id}:role/orders-lambda"}
          Action: [kms:Decrypt, kms:GenerateDataKey]
          Resource: "*"
    grants:
      - name: orders-lambda
        grantee: arn:aws:iam::${account_id}:role/orders-lambda
        operations: [Decrypt, GenerateDataKey]
  refunds:
    description: Refunds
    aliases: [alias/payments/refunds]
"""

ORDERS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AccountAdmin",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "Lambda",
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
        },
    ],
}


@pytest.fixture
def kms(endpoint: str) -> Any:
    boto3.client("iam", endpoint_url=endpoint, region_name=REGION).create_role(
        RoleName="orders-lambda", AssumeRolePolicyDocument="{}"
    )
    return boto3.client("kms", endpoint_url=endpoint, region_name=REGION)


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "payments.yaml"
    path.write_text(MANIFEST, encoding="utf-8")
    return path


def run(endpoint: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args, "--endpoint-url", endpoint, "--region", REGION])
    out, err = capsys.readouterr()
    return code, out, err


def plan_json(
    endpoint: str, capsys: pytest.CaptureFixture[str], path: Path, *flags: str
) -> tuple[int, dict[str, Any]]:
    code, out, err = run(
        endpoint, capsys, str(path), "--format", "json", "--detailed-exitcode", *flags
    )
    assert code in (0, 2, 3), err
    return code, json.loads(out)


def changes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["address"]: c for c in document["changes"]}


def operations(change: dict[str, Any]) -> list[str]:
    return [call["operation"] for call in change["calls"]]


def create_key(
    kms: Any, name: str, *, policy: dict[str, Any] | None = None, **extra_tags: str
) -> str:
    """A key tagged exactly as kmsplan's CreateKey tags it."""
    tags = {
        "kmsplan:stack": "payments",
        "kmsplan:key": name,
        "kmsplan:deletion-protection": "true",
        "kmsplan:deletion-window": "30",
        "team": "payments",
        **extra_tags,
    }
    params: dict[str, Any] = {
        "Description": {"orders": "Orders table encryption", "refunds": "Refunds"}.get(name, name),
        "Tags": [{"TagKey": k, "TagValue": v} for k, v in tags.items()],
    }
    if policy is not None:
        params["Policy"] = json.dumps(policy)
    key_id = str(kms.create_key(**params)["KeyMetadata"]["KeyId"])
    kms.enable_key_rotation(KeyId=key_id)
    return key_id


def converge(kms: Any) -> dict[str, str]:
    """The live state an apply of MANIFEST leaves: returns logical name -> key id."""
    ids = {
        "orders": create_key(kms, "orders", policy=ORDERS_POLICY),
        "refunds": create_key(kms, "refunds"),
    }
    kms.create_alias(AliasName="alias/payments/orders", TargetKeyId=ids["orders"])
    kms.create_alias(AliasName="alias/payments/refunds", TargetKeyId=ids["refunds"])
    kms.create_grant(
        KeyId=ids["orders"],
        GranteePrincipal=ROLE,
        Operations=["Decrypt", "GenerateDataKey"],
        Name="kmsplan/orders-lambda",
    )
    return ids


def all_key_ids(kms: Any) -> list[str]:
    return sorted(k["KeyId"] for k in kms.list_keys()["Keys"])


# ---- a new stack -----------------------------------------------------------------------------


def test_new_stack_plans_creates_and_exits_2(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = plan_json(endpoint, capsys, manifest)
    assert code == 2
    assert [c["address"] for c in document["changes"]] == [
        "key.orders",
        "key.refunds",
        "alias.alias/payments/orders",
        "alias.alias/payments/refunds",
        "grant.orders.orders-lambda",
    ]
    assert {c["action"] for c in document["changes"]} == {"create"}
    create = document["changes"][0]["calls"][0]
    assert create["operation"] == "CreateKey"
    assert {"TagKey": "kmsplan:key", "TagValue": "orders"} in create["params"]["Tags"]
    assert json.loads(create["params"]["Policy"]) == ORDERS_POLICY  # ${account_id} resolved
    assert document["summary"] == {
        "add": 5,
        "change": 0,
        "delete": 0,
        "restore": 0,
        "adopt": 0,
        "release": 0,
        "blocked": 0,
    }
    assert document["cost"]["monthly_delta_usd"] == 6.0
    assert all_key_ids(kms) == []  # plan never writes


def test_text_output_ends_with_the_summary_and_exit_0_without_detailed_exitcode(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(endpoint, capsys, str(manifest), "--no-color")
    assert code == 0
    assert "Plan: 5 to add, 0 to change, 0 to delete, 0 blocked." in out
    assert "\x1b[" not in out


def test_out_saves_a_plan_with_a_fingerprint(
    endpoint: str, kms: Any, manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kmsplan.plan import planfile

    converge(kms)
    saved = tmp_path / "plan.json"
    code, _, err = run(endpoint, capsys, str(manifest), "--out", str(saved))
    assert code == 0
    assert f"Saved the plan to {saved}." in err
    plan = planfile.read(saved)
    assert plan.changes == ()
    assert {"discovered", "key.orders.policy", "alias.alias/payments/orders"} <= set(
        plan.fingerprint
    )
    assert plan.kmsplan_version


# ---- converged and drift ---------------------------------------------------------------------


def test_converged_stack_plans_clean(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    converge(kms)
    code, document = plan_json(endpoint, capsys, manifest)
    assert document["changes"] == []
    assert code == 0


def test_policy_rewritten_in_an_equivalent_form_plans_clean(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    rewritten = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Sid": "Lambda",
                "Principal": {"AWS": [ROLE]},
                "Action": ["KMS:GenerateDataKey", "kms:decrypt"],
                "Resource": ["*"],
            },
            {
                "Sid": "AccountAdmin",
                "Effect": "Allow",
                "Principal": {"AWS": ACCOUNT},
                "Action": ["kms:*"],
                "Resource": "*",
            },
        ],
    }
    kms.put_key_policy(
        KeyId=ids["orders"], PolicyName="default", Policy=json.dumps(rewritten, indent=4)
    )
    code, document = plan_json(endpoint, capsys, manifest)
    assert document["changes"] == []
    assert code == 0


def test_edited_policy_is_put_back(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    edited = {"Version": "2012-10-17", "Statement": [ORDERS_POLICY["Statement"][0]]}
    kms.put_key_policy(KeyId=ids["orders"], PolicyName="default", Policy=json.dumps(edited))
    code, document = plan_json(endpoint, capsys, manifest)
    assert code == 2
    [change] = document["changes"]
    assert change["address"] == "key.orders" and change["action"] == "update"
    assert operations(change) == ["PutKeyPolicy"]
    assert change["policy_diff"]["label_only"] is False
    assert change["calls"][0]["params"]["KeyId"] == ids["orders"]


def test_removed_tag_is_put_back(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    kms.untag_resource(KeyId=ids["refunds"], TagKeys=["team"])
    _, document = plan_json(endpoint, capsys, manifest)
    [change] = document["changes"]
    assert change["address"] == "key.refunds"
    assert change["calls"] == [
        {
            "operation": "TagResource",
            "params": {
                "KeyId": ids["refunds"],
                "Tags": [{"TagKey": "team", "TagValue": "payments"}],
            },
        }
    ]


def test_alias_moved_within_the_stack_is_moved_back(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    kms.update_alias(AliasName="alias/payments/orders", TargetKeyId=ids["refunds"])
    _, document = plan_json(endpoint, capsys, manifest)
    [change] = document["changes"]
    assert change["address"] == "alias.alias/payments/orders"
    assert change["gate"]["status"] == "allowed"
    assert change["calls"] == [
        {
            "operation": "UpdateAlias",
            "params": {"AliasName": "alias/payments/orders", "TargetKeyId": ids["orders"]},
        }
    ]


def test_alias_taken_by_a_key_outside_the_stack_is_a_blocked_takeover(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    converge(kms)
    outsider = kms.create_key(Description="not ours")["KeyMetadata"]["KeyId"]
    kms.update_alias(AliasName="alias/payments/orders", TargetKeyId=outsider)
    code, document = plan_json(endpoint, capsys, manifest)
    assert code == 3
    change = changes(document)["alias.alias/payments/orders"]
    assert [b["rule"] for b in change["gate"]["blocks"]] == ["alias-takeover"]
    code, document = plan_json(endpoint, capsys, manifest, "--allow-alias-takeover")
    assert code == 2


def test_revoked_grant_is_created_again(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    [grant] = kms.list_grants(KeyId=ids["orders"])["Grants"]
    kms.revoke_grant(KeyId=ids["orders"], GrantId=grant["GrantId"])
    _, document = plan_json(endpoint, capsys, manifest)
    [change] = document["changes"]
    assert change["address"] == "grant.orders.orders-lambda" and change["action"] == "create"
    assert change["calls"][0]["params"] == {
        "KeyId": ids["orders"],
        "GranteePrincipal": ROLE,
        "Operations": ["Decrypt", "GenerateDataKey"],
        "Name": "kmsplan/orders-lambda",
    }


def test_rotation_turned_off_is_turned_back_on(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    kms.disable_key_rotation(KeyId=ids["refunds"])
    _, document = plan_json(endpoint, capsys, manifest)
    [change] = document["changes"]
    assert change["address"] == "key.refunds"
    assert change["calls"] == [
        {"operation": "EnableKeyRotation", "params": {"KeyId": ids["refunds"]}}
    ]


def test_disabled_key_is_enabled(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    kms.disable_key(KeyId=ids["orders"])
    _, document = plan_json(endpoint, capsys, manifest)
    [change] = document["changes"]
    assert change["address"] == "key.orders"
    assert operations(change) == ["EnableKey"]


def test_key_pending_deletion_is_restored(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    kms.schedule_key_deletion(KeyId=ids["refunds"], PendingWindowInDays=7)
    code, document = plan_json(endpoint, capsys, manifest)
    assert code == 2
    [change] = document["changes"]
    assert change["address"] == "key.refunds" and change["action"] == "restore"
    assert operations(change)[:2] == ["CancelKeyDeletion", "EnableKey"]
    assert change["calls"][0]["params"] == {"KeyId": ids["refunds"]}
    assert document["summary"]["restore"] == 1


def test_unmanaged_keys_and_foreign_grants_are_untouched(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    kms.create_key(Description="someone else's key")
    kms.create_key(
        Description="another stack's key",
        Tags=[
            {"TagKey": "kmsplan:stack", "TagValue": "other"},
            {"TagKey": "kmsplan:key", "TagValue": "x"},
        ],
    )
    kms.create_grant(
        KeyId=ids["orders"], GranteePrincipal=ROLE, Operations=["Decrypt"], Name="ebs-volume-grant"
    )
    code, document = plan_json(endpoint, capsys, manifest)
    assert document["changes"] == []
    assert code == 0
    assert len(document["unmanaged"]) == 1
    assert document["unmanaged"][0].startswith("grant ebs-volume-grant on key.orders")


@pytest.mark.parametrize("name", ["kmsplanner-x", "kmsplan", "kmsplan-x", "Kmsplan/x"])
def test_a_grant_named_almost_like_ours_stays_foreign_and_is_never_revoked(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # Only a Name starting with exactly "kmsplan/" makes a grant kmsplan's; it is undeclared
    # here, so taking it for ours would plan its RevokeGrant.
    ids = converge(kms)
    grant_id = kms.create_grant(
        KeyId=ids["orders"], GranteePrincipal=ROLE, Operations=["Decrypt"], Name=name
    )["GrantId"]
    code, document = plan_json(endpoint, capsys, manifest, "--allow-delete", "--ignore-usage")
    assert (code, document["changes"]) == (0, [])
    assert document["unmanaged"] == [
        f"grant {name} on key.orders (grantee {ROLE}): not named kmsplan/<name>, never changed "
        "by kmsplan"
    ]

    code = main(["apply", str(manifest), "--auto-approve", "--endpoint-url", endpoint])
    _, err = capsys.readouterr()
    assert code == 0, err
    grants = kms.list_grants(KeyId=ids["orders"])["Grants"]
    assert sorted((g["Name"], g["GrantId"]) for g in grants if g["Name"] == name) == [
        (name, grant_id)
    ]
    assert sorted(g["Name"] for g in grants) == sorted(["kmsplan/orders-lambda", name])


# ---- the gate and the account guard ----------------------------------------------------------


def test_removed_key_block_is_blocked_by_protection_exit_3(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    manifest.write_text(MANIFEST.split("  refunds:")[0], encoding="utf-8")
    code, document = plan_json(endpoint, capsys, manifest, "--allow-delete")
    assert code == 3
    change = changes(document)["key.refunds"]
    assert change["action"] == "delete" and change["destructive"] is True
    # moto does not implement GetKeyLastUsage: the usage is unknown, which also blocks.
    assert [b["rule"] for b in change["gate"]["blocks"]] == ["deletion-protection", "usage"]
    assert change["calls"] == [
        {
            "operation": "ScheduleKeyDeletion",
            "params": {"KeyId": ids["refunds"], "PendingWindowInDays": 30},
        }
    ]
    # The alias goes first, and is not itself blocked.
    assert changes(document)["alias.alias/payments/refunds"]["gate"]["status"] == "allowed"


def test_unprotected_key_deletion_passes_with_every_flag(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = converge(kms)
    kms.tag_resource(
        KeyId=ids["refunds"], Tags=[{"TagKey": "kmsplan:deletion-protection", "TagValue": "false"}]
    )
    manifest.write_text(MANIFEST.split("  refunds:")[0], encoding="utf-8")
    code, document = plan_json(endpoint, capsys, manifest, "--allow-delete", "--ignore-usage")
    assert code == 2
    assert changes(document)["key.refunds"]["gate"]["status"] == "allowed"


def test_empty_manifest_is_refused_as_mass_deletion(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    converge(kms)
    manifest.write_text("version: 1\nstack: payments\nkeys: {}\n", encoding="utf-8")
    code, document = plan_json(endpoint, capsys, manifest, "--allow-delete", "--ignore-usage")
    assert code == 3
    key_changes = [c for c in document["changes"] if c["resource"] == "key"]
    assert len(key_changes) == 2
    assert all("mass-deletion" in [b["rule"] for b in c["gate"]["blocks"]] for c in key_changes)


def test_wrong_account_is_refused_before_reading_anything(
    endpoint: str, kms: Any, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    converge(kms)
    before = all_key_ids(kms)
    manifest.write_text(
        MANIFEST.replace("stack: payments\n", 'stack: payments\naccount: "111122223333"\n'),
        encoding="utf-8",
    )
    code, out, err = run(endpoint, capsys, str(manifest))
    assert code == 1
    assert out == ""
    assert err == (
        "error: the manifests declare account 111122223333 (account:), but the credentials are "
        f"for account {ACCOUNT} (arn:aws:sts::{ACCOUNT}:user/moto); refusing to plan or apply "
        "against another account. Nothing was read or changed\n"
    )
    assert all_key_ids(kms) == before


def test_invalid_manifest_fails_before_any_aws_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nstack: payments\nkeys:\n  orders:\n    protectd: true\n", encoding="utf-8"
    )
    # An endpoint nothing listens on: reaching it would fail differently.
    code = main(["plan", str(bad), "--endpoint-url", "http://127.0.0.1:9", "--region", REGION])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert f"{bad}:5:5: error: keys.orders" in err
    assert "protectd" in err
