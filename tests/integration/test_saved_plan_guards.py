"""`kmsplan apply --plan FILE` refuses to run a saved plan anywhere but where it was planned,
and refuses a plan that something new in KMS has made stale. Each refusal asserts its message,
exit code 1 and that KMS did not change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from apply_support import ACCOUNT, REGION, aliases, client, kmsplan, write_manifest

pytestmark = pytest.mark.integration

OTHER_ACCOUNT = "222233334444"
OTHER_REGION = "us-west-2"


def shop_keys() -> dict[str, Any]:
    return {
        "orders": {"description": "Orders", "aliases": ["alias/shop/orders"]},
        "audit": {"description": "Audit"},
    }


def saved_plan(tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]) -> Path:
    """A plan that creates the `shop` stack, saved in the default account and Region."""
    manifest = write_manifest(tmp_path / "shop.yaml", "shop", shop_keys())
    saved = tmp_path / "plan.json"
    code, _, err = kmsplan(capsys, endpoint, "plan", str(manifest), "--out", str(saved))
    assert code == 0, err
    return saved


def all_keys(endpoint: str, *, region: str = REGION, **credentials: str) -> list[str]:
    kms = boto3.client("kms", endpoint_url=endpoint, region_name=region, **credentials)
    return [k["KeyId"] for k in kms.list_keys()["Keys"]]


def customer_aliases(endpoint: str) -> dict[str, str]:
    """Every alias but those of AWS managed keys (which moto lists from the start)."""
    return {n: t for n, t in aliases(endpoint).items() if not n.startswith("alias/aws/")}


def test_a_saved_plan_is_refused_with_credentials_of_another_account(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved = saved_plan(tmp_path, endpoint, capsys)
    # moto: credentials of a role assumed in another account act in that account.
    assumed = client(endpoint, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/deployer", RoleSessionName="ci"
    )
    creds = assumed["Credentials"]
    other = {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    with monkeypatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
        env.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
        env.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
        code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")

    assert code == 1
    assert err == (
        f"error: the saved plan is for account {ACCOUNT}, but the credentials are for account "
        f"{OTHER_ACCOUNT} (arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/deployer/ci); "
        "nothing was changed\n"
    )
    assert out == ""
    assert all_keys(endpoint, **other) == []
    assert all_keys(endpoint) == []


def test_a_saved_plan_is_refused_in_another_region(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = saved_plan(tmp_path, endpoint, capsys)

    code, out, err = kmsplan(
        capsys, endpoint, "apply", "--plan", str(saved), "--region", OTHER_REGION, "--auto-approve"
    )

    assert code == 1
    assert err == (
        f"error: the saved plan is for Region {REGION}, not {OTHER_REGION}; nothing was changed\n"
    )
    assert out == ""
    assert all_keys(endpoint) == []
    assert all_keys(endpoint, region=OTHER_REGION) == []


# ---- stale: something appeared after `plan --out` ------------------------------------------


def test_a_saved_plan_is_stale_when_an_alias_it_creates_appeared_since(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = saved_plan(tmp_path, endpoint, capsys)
    kms = client(endpoint)
    foreign = kms.create_key(Description="not ours")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/shop/orders", TargetKeyId=foreign)

    code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")

    assert code == 1
    assert err == (
        f"error: stale plan: live KMS changed since {saved} was saved "
        "(alias.alias/shop/orders); run kmsplan plan again. Nothing was changed\n"
    )
    assert out == ""
    assert all_keys(endpoint) == [foreign]
    assert customer_aliases(endpoint) == {"alias/shop/orders": foreign}


def test_a_saved_plan_is_stale_when_a_key_tagged_for_the_stack_appeared_since(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = saved_plan(tmp_path, endpoint, capsys)
    kms = client(endpoint)
    tags = {"kmsplan:stack": "shop", "kmsplan:key": "audit", "kmsplan:deletion-protection": "true"}
    audit = kms.create_key(
        Description="Audit", Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()]
    )["KeyMetadata"]["KeyId"]

    code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")

    assert code == 1
    assert err == (
        f"error: stale plan: live KMS changed since {saved} was saved (discovered, "
        "key.audit.grants, key.audit.metadata, key.audit.policy, key.audit.rotation, "
        "key.audit.tags); run kmsplan plan again. Nothing was changed\n"
    )
    assert out == ""
    assert all_keys(endpoint) == [audit]
    assert customer_aliases(endpoint) == {}
