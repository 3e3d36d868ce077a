"""`adopt:` against the emulator: an existing key comes under management with one
TagResource (plus whatever else the block changes); every refusal blocks the plan, says why
and how to proceed, and leaves KMS as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from apply_support import (
    ACCOUNT,
    admin_policy,
    aliases,
    client,
    create_role,
    grant_names,
    kmsplan,
    stack_keys,
    tags_of,
    write_manifest,
)

pytestmark = pytest.mark.integration


def existing_key(endpoint: str, *, alias: str | None = None, **kw: Any) -> str:
    """A key made outside kmsplan, as a console or a script would."""
    kms = client(endpoint)
    kw.setdefault("Policy", json.dumps(admin_policy()))
    key_id = str(kms.create_key(**kw)["KeyMetadata"]["KeyId"])
    if alias is not None:
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def snapshot(endpoint: str) -> dict[str, Any]:
    """Everything a plan could change in KMS: keys, states, tags, policies, aliases."""
    kms = client(endpoint)
    keys = {}
    for entry in kms.list_keys()["Keys"]:
        key_id = entry["KeyId"]
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        keys[key_id] = {
            "state": metadata["KeyState"],
            "description": metadata.get("Description"),
            "tags": tags_of(kms, key_id),
            "policy": kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"],
            "grants": grant_names(endpoint, key_id),
        }
    return {"keys": keys, "aliases": aliases(endpoint)}


def test_adopting_a_key_tags_it_updates_what_differs_and_then_plans_clean(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    user = create_role(endpoint, "app")
    key_id = existing_key(endpoint, alias="alias/legacy/orders", Description="orders (old)")
    client(endpoint).create_grant(
        KeyId=key_id, GranteePrincipal=user, Operations=["Decrypt"], Name="ebs-volume"
    )
    block = {
        "adopt": "alias/legacy/orders",
        "description": "orders",
        "aliases": ["alias/legacy/orders", "alias/orders"],
        "policy": admin_policy(),
        "grants": [{"name": "app", "grantee": user, "operations": ["Decrypt"]}],
    }
    path = write_manifest(tmp_path / "m.yaml", "brown", {"orders": block})

    code, out, err = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
    assert code == 2, out + err
    assert "» key.orders will be adopted" in out
    assert f"# adopt: alias/legacy/orders: existing key {key_id}, not managed by kmsplan yet" in out
    assert "calls: UpdateKeyDescription, TagResource" in out
    assert "alias.alias/legacy/orders" not in out  # already on the key: no call
    assert "+ alias.alias/orders will be created" in out
    assert "grant ebs-volume on key.orders" in out  # foreign, listed
    assert "1 to adopt" in out

    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    assert {
        name: [m["KeyId"] for m in found] for name, found in stack_keys(endpoint, "brown").items()
    } == {"orders": [key_id]}
    kms = client(endpoint)
    assert tags_of(kms, key_id) == {
        "kmsplan:stack": "brown",
        "kmsplan:key": "orders",
        "kmsplan:deletion-protection": "true",
        "kmsplan:deletion-window": "30",
    }
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "orders"
    assert grant_names(endpoint, key_id) == ["ebs-volume", "kmsplan/app"]
    assert aliases(endpoint)["alias/orders"] == key_id

    code, out, err = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
    assert code == 0, out + err
    assert "No changes." in out


def test_a_key_pending_deletion_is_adopted_with_a_visible_restore(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = existing_key(endpoint)
    client(endpoint).schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    path = write_manifest(
        tmp_path / "m.yaml", "brown", {"old": {"adopt": key_id, "policy": admin_policy()}}
    )
    code, out, err = kmsplan(capsys, endpoint, "plan", str(path))
    assert code == 0, out + err
    assert "declared, but the live key is pending deletion" in out
    assert "calls: CancelKeyDeletion, EnableKey, TagResource" in out
    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    assert client(endpoint).describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    code, out, err = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
    assert code == 0, out + err


def refused(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    keys: dict[str, Any],
    stack: str = "brown",
) -> tuple[str, str]:
    """Plan and apply `keys`: both refuse (exit 3, exit 1) and KMS is unchanged."""
    path = write_manifest(tmp_path / "refused.yaml", stack, keys)
    before = snapshot(endpoint)
    code, plan_out, err = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
    assert code == 3, plan_out + err
    code, out, apply_err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 1, out + apply_err
    assert "refusing to apply" in apply_err and "nothing was changed" in apply_err
    assert snapshot(endpoint) == before
    return plan_out, apply_err


MISSING = "1234abcd-12ab-34cd-56ef-1234567890ab"


def test_adopting_a_key_that_does_not_exist_is_refused(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, err = refused(tmp_path, endpoint, capsys, {"orders": {"adopt": MISSING}})
    assert (
        f"blocked by adopt: key.orders: adopt: {MISSING}: no such key in account {ACCOUNT}, "
        "Region us-east-1"
    ) in out
    assert f"to unblock: check the reference (aws kms describe-key --key-id {MISSING})" in out
    assert f"key.orders: adopt: {MISSING}: no such key" in err


def test_adopting_a_key_of_another_region_is_refused_without_reading_it(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{MISSING}"
    out, _ = refused(tmp_path, endpoint, capsys, {"orders": {"adopt": arn}})
    assert (
        f"the ARN names account {ACCOUNT}, Region eu-west-1; stack brown is planned in "
        f"account {ACCOUNT}, Region us-east-1"
    ) in out


def test_adopting_a_key_of_another_stack_is_refused(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_manifest(tmp_path / "other.yaml", "other", {"theirs": {}})
    code, out, err = kmsplan(capsys, endpoint, "apply", str(other), "--auto-approve")
    assert code == 0, out + err
    (theirs,) = stack_keys(endpoint, "other")["theirs"]
    out, _ = refused(tmp_path, endpoint, capsys, {"mine": {"adopt": theirs["KeyId"]}})
    assert f"key {theirs['KeyId']} is key.theirs of stack other (its kmsplan:stack tag)" in out
    assert "release it from stack other first (list theirs under released: there" in out


def test_adopting_a_key_of_another_block_or_one_key_twice_is_refused(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(tmp_path / "m.yaml", "brown", {"orders": {}})
    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    (orders,) = stack_keys(endpoint, "brown")["orders"]
    loose = existing_key(endpoint)
    out, _ = refused(
        tmp_path,
        endpoint,
        capsys,
        {
            "orders": {},
            "copy": {"adopt": orders["KeyId"]},
            "a": {"adopt": loose},
            "b": {"adopt": loose},
        },
    )
    assert f"key {orders['KeyId']} is already key.orders of this stack" in out
    assert f"key.a: adopt: {loose}: key {loose} is also adopted by key.b" in out
    assert f"key.b: adopt: {loose}: key {loose} is also adopted by key.a" in out


def test_adopt_naming_another_key_than_the_one_carrying_the_tags_is_refused(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(tmp_path / "m.yaml", "brown", {"orders": {}})
    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    (orders,) = stack_keys(endpoint, "brown")["orders"]
    loose = existing_key(endpoint)
    out, _ = refused(tmp_path, endpoint, capsys, {"orders": {"adopt": loose}})
    assert (
        f"names key {loose}, but key {orders['KeyId']} already carries this block's tags "
        "(kmsplan:key=orders)"
    ) in out


def test_adopting_a_key_whose_spec_differs_is_refused_as_immutable(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    signing = existing_key(endpoint, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    out, _ = refused(tmp_path, endpoint, capsys, {"orders": {"adopt": signing}})
    assert "blocked by immutable: key.orders: spec 'ECC_NIST_P256' -> 'SYMMETRIC_DEFAULT'" in out
    assert "write the key's actual spec, usage and multi_region in its block" in out


def test_adopting_an_aws_managed_key_is_refused(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The emulator makes AWS managed keys when first described; KMS has them already.
    client(endpoint).describe_key(KeyId="alias/aws/ebs")
    out, _ = refused(tmp_path, endpoint, capsys, {"ebs": {"adopt": "alias/aws/ebs"}})
    assert "key.ebs: adopt: alias/aws/ebs: key " in out
    assert "is an AWS managed key (KeyManager=AWS), which only AWS manages" in out
    assert "to unblock: remove the block; to control the key policy, use a customer" in out


def test_a_saved_adoption_plan_applies_and_goes_stale_when_the_key_changes(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = existing_key(endpoint, alias="alias/legacy/orders")
    block = {
        "adopt": "alias/legacy/orders",
        "aliases": ["alias/legacy/orders"],
        "policy": admin_policy(),
    }
    path = write_manifest(tmp_path / "m.yaml", "brown", {"orders": block})
    saved = tmp_path / "adopt.plan"
    code, out, err = kmsplan(capsys, endpoint, "plan", str(path), "--out", str(saved))
    assert code == 0, out + err
    client(endpoint).update_key_description(KeyId=key_id, Description="changed by hand")
    code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")
    assert code == 1
    assert err == (
        f"error: stale plan: live KMS changed since {saved} was saved (adopt.orders.metadata); "
        "run kmsplan plan again. Nothing was changed\n"
    )
    assert tags_of(client(endpoint), key_id) == {}

    code, out, err = kmsplan(capsys, endpoint, "plan", str(path), "--out", str(saved))
    assert code == 0, out + err
    code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")
    assert code == 0, out + err
    assert tags_of(client(endpoint), key_id)["kmsplan:key"] == "orders"

    # adopt: may stay: a saved plan of another change, the adopt: still there, is not stale.
    block["description"] = "orders"
    write_manifest(tmp_path / "m.yaml", "brown", {"orders": block})
    code, out, err = kmsplan(capsys, endpoint, "plan", str(path), "--out", str(saved))
    assert code == 0, out + err
    assert "~ key.orders will be updated in place" in out
    code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")
    assert code == 0, out + err
