"""One `kmsplan plan` of several stacks in two accounts and two Regions, against the moto
server (one state per account and Region; STS AssumeRole into another account's role lands
the calls there): each stack is planned on its own, a stack that fails does not hide the
others, and the exit code speaks for the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from apply_support import ACCOUNT, client, kmsplan, write_manifest

pytestmark = pytest.mark.integration

OTHER = "222233334444"
ROLE = f"arn:aws:iam::{OTHER}:role/x"


def keys_in(endpoint: str, *, region: str, role: bool = False) -> list[str]:
    """The kmsplan:stack of every key in an account and Region."""
    if role:
        creds = client(endpoint, "sts").assume_role(RoleArn=ROLE, RoleSessionName="test")
        c = creds["Credentials"]
        kms: Any = boto3.client(
            "kms",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
        )
    else:
        kms = boto3.client("kms", endpoint_url=endpoint, region_name=region)
    stacks = []
    for key in kms.list_keys()["Keys"]:
        tags = {
            t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]
        }
        stacks.append(tags.get("kmsplan:stack", ""))
    return sorted(stacks)


@pytest.fixture
def org(tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]) -> Path:
    """Three stacks in one folder, each applied on its own: two Regions, two accounts."""
    folder = tmp_path / "kms"
    folder.mkdir()
    write_manifest(folder / "east.yaml", "east", {"a": {}}, account=ACCOUNT, region="us-east-1")
    write_manifest(folder / "west.yaml", "west", {"b": {}, "c": {}}, region="eu-west-1")
    write_manifest(
        folder / "other.yaml", "other", {"d": {}}, account=OTHER, region="us-east-1", role=ROLE
    )
    for name in ("east", "west", "other"):
        code, out, err = kmsplan(
            capsys, endpoint, "apply", str(folder / f"{name}.yaml"), "--auto-approve"
        )
        assert code == 0, out + err
    return folder


def test_one_plan_of_three_stacks_in_two_accounts_and_regions_is_clean(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert keys_in(endpoint, region="us-east-1") == ["east"]
    assert keys_in(endpoint, region="eu-west-1") == ["west", "west"]
    assert keys_in(endpoint, region="us-east-1", role=True) == ["other"]
    code, out, err = kmsplan(capsys, endpoint, "plan", str(org), "--detailed-exitcode")
    assert (code, err) == (0, ""), out + err
    lines = out.splitlines()
    assert lines[:4] == [
        "Stacks (3):",
        f"  east  {ACCOUNT}, us-east-1",
        f"  other  {OTHER}, us-east-1",
        "  west  (account of the credentials), eu-west-1",
    ]
    assert f"kmsplan plan for stack other, account {OTHER}, us-east-1" in lines
    assert f"kmsplan plan for stack west, account {ACCOUNT}, eu-west-1" in lines
    assert lines[-1] == ("Run: 3 stacks: 0 with changes, 0 blocked, 0 failed, 3 without changes.")


def test_a_change_in_one_stack_is_exit_2_and_markdown_has_one_table(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_manifest(org / "west.yaml", "west", {"b": {}, "c": {}, "new": {}}, region="eu-west-1")
    code, out, _ = kmsplan(
        capsys, endpoint, "plan", str(org), "--detailed-exitcode", "--format", "markdown"
    )
    assert code == 2, out
    assert "| `west` | (account of the credentials), eu-west-1 | Plan: 1 to add" in out
    assert "Run: 3 stacks: 1 with changes, 0 blocked, 0 failed, 2 without changes." in out
    assert "<details>" not in out  # three stacks stay unfolded
    assert keys_in(endpoint, region="eu-west-1") == ["west", "west"]  # a plan writes nothing


def test_a_stack_with_a_wrong_account_fails_while_the_others_are_planned(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_manifest(org / "east.yaml", "east", {"a": {}}, account="999999999999", region="us-east-1")
    code, out, err = kmsplan(capsys, endpoint, "plan", str(org), "--detailed-exitcode")
    assert code == 1, out + err
    assert "=== stack east ===" in out
    assert (
        "failed: error: the manifests declare account 999999999999 (account:), but the "
        f"credentials are for account {ACCOUNT}"
    ) in out
    assert f"kmsplan plan for stack other, account {OTHER}, us-east-1" in out
    assert f"kmsplan plan for stack west, account {ACCOUNT}, eu-west-1" in out
    assert out.splitlines()[-1] == (
        "Run: 3 stacks: 0 with changes, 0 blocked, 1 failed, 2 without changes."
    )


def test_json_and_saved_plans_take_one_stack_per_run(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = kmsplan(capsys, endpoint, "plan", str(org), "--format", "json")
    assert (code, out) == (1, "")
    assert "the manifests declare 3 stacks (east, other, west); --format json and --out" in err
