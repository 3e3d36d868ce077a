"""One `kmsplan lint --live` of several stacks against the moto server: each stack is opened
on its own run (its own role, Region and account guard) and linted with its live policies; a
stack with a wrong `account:` is reported with the guard's refusal while the others are still
linted, the run exits 1, and nothing in KMS changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from apply_support import (
    ACCOUNT,
    REGION,
    admin_policy,
    client,
    create_role,
    kmsplan,
    tags_of,
    write_manifest,
)

pytestmark = pytest.mark.integration

OTHER = "222233334444"
ROLE = f"arn:aws:iam::{OTHER}:role/x"
DELETED = "AROAEXAMPLEROLEID1234"  # the unique id a deleted role leaves in a policy
LEFT_BEHIND = (
    "IAM unique ids left behind by deleted roles or users; those statements match nobody now"
)
REFUSED = (
    "error: the manifest declares account 999999999999, but the credentials are for account "
    f"{ACCOUNT}; refusing to read another account's keys"
)


def kms_in_other_account(endpoint: str) -> Any:
    creds = client(endpoint, "sts").assume_role(RoleArn=ROLE, RoleSessionName="test")
    c = creds["Credentials"]
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


def snapshot(kms: Any) -> dict[str, Any]:
    """Every key of one account: its state, tags, policy and aliases."""
    keys = {}
    for entry in kms.list_keys()["Keys"]:
        key = entry["KeyId"]
        keys[key] = (
            kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"],
            tags_of(kms, key),
            kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"],
        )
    return {"keys": keys, "aliases": kms.list_aliases()["Aliases"]}


@pytest.fixture
def org(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Three stacks in one folder: `app` (its live policy names a deleted role), `other` (in
    another account, through its role) and `wrong` (declares an account the credentials are
    not for). Reports name the files relative to `tmp_path`."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "kms"
    folder.mkdir()
    create_role(endpoint, "app")
    app_use = {
        "Sid": "AppUse",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    write_manifest(
        folder / "app.yaml",
        "app",
        {"app": {"rotation": {"enabled": True}, "policy": admin_policy(app_use)}},
        account=ACCOUNT,
        region=REGION,
    )
    write_manifest(
        folder / "other.yaml",
        "other",
        {"d": {"rotation": {"enabled": True}}},
        account=OTHER,
        region=REGION,
        role=ROLE,
    )
    write_manifest(
        folder / "wrong.yaml",
        "wrong",
        {"w": {"rotation": {"enabled": True}}},
        account="999999999999",
        region=REGION,
    )
    for name in ("app", "other"):
        code, out, err = kmsplan(
            capsys, endpoint, "apply", str(folder / f"{name}.yaml"), "--auto-approve"
        )
        assert code == 0, out + err
    # The role behind `app`'s AppUse statement was deleted: KMS shows its unique id now.
    kms = client(endpoint)
    (key,) = [k["KeyId"] for k in kms.list_keys()["Keys"]]
    live = admin_policy({**app_use, "Principal": {"AWS": DELETED}})
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(live))
    # And in `other`'s account, which only its role reaches, one more.
    other = kms_in_other_account(endpoint)
    (key,) = [k["KeyId"] for k in other.list_keys()["Keys"]]
    admin = {**admin_policy()["Statement"][0], "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}}
    live = {
        "Version": "2012-10-17",
        "Statement": [admin, {**app_use, "Principal": {"AWS": DELETED}}],
    }
    other.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(live))
    return folder


def test_a_stack_with_a_wrong_account_fails_while_the_others_are_linted_live(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (snapshot(client(endpoint)), snapshot(kms_in_other_account(endpoint)))
    code, out, err = kmsplan(capsys, endpoint, "lint", "--live", str(org))
    assert (code, err) == (1, ""), out + err
    lines = out.splitlines()
    assert lines[:4] == [
        "Stacks (3):",
        f"  app  {ACCOUNT}, {REGION}",
        f"  other  {OTHER}, {REGION}",
        f"  wrong  999999999999, {REGION}",
    ]
    # `app` was read live with its own run: the deleted role in its live policy is found.
    app = lines[lines.index("=== stack app ===") + 1 : lines.index("=== stack other ===")]
    assert app == [
        f"kms/app.yaml:11:17: warning: KMS016 [app] the live policy of key 'app' names "
        f"{DELETED}: {LEFT_BEHIND}",
        "1 finding: 0 errors, 1 warning, 0 info.",
        "",
    ]
    # So was `other`, with its role, in its own account.
    other = lines[lines.index("=== stack other ===") + 1 : lines.index("=== stack wrong ===")]
    assert other == [
        f"kms/other.yaml:8:10: warning: KMS016 [d] the live policy of key 'd' names "
        f"{DELETED}: {LEFT_BEHIND}",
        "1 finding: 0 errors, 1 warning, 0 info.",
        "",
    ]
    wrong = lines[lines.index("=== stack wrong ===") + 1 :]
    assert wrong == [
        f"failed: {REFUSED}",
        "",
        "Run: 3 stacks, 1 failed. 2 findings: 0 errors, 2 warnings, 0 info.",
    ]
    after = (snapshot(client(endpoint)), snapshot(kms_in_other_account(endpoint)))
    assert after == before


def test_sarif_of_a_run_with_a_failed_stack_says_so_in_the_file_and_on_stderr(
    org: Path, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(client(endpoint))
    report = tmp_path / "lint.sarif"
    code, out, err = kmsplan(
        capsys, endpoint, "lint", "--live", "--format", "sarif", "-o", str(report), str(org)
    )
    assert (code, out) == (1, "")
    assert err == f"stack wrong failed: {REFUSED}\n"
    (sarif_run,) = json.loads(report.read_text(encoding="utf-8"))["runs"]
    assert [r["ruleId"] for r in sarif_run["results"]] == ["KMS016", "KMS016"]
    (invocation,) = sarif_run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"] == [
        {"level": "error", "message": {"text": f"stack wrong failed: {REFUSED}"}}
    ]
    assert snapshot(client(endpoint)) == before


def test_one_stack_that_fails_is_still_the_error_of_the_run_as_before(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = kmsplan(capsys, endpoint, "lint", "--live", str(org / "wrong.yaml"))
    assert (code, out, err) == (1, "", REFUSED + "\n")
