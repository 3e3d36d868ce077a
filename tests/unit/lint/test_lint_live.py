"""`kmsplan lint --live` against the moto KMS server: the live policy is read through
kmsplan.aws and a deleted principal (IAM unique id) in it is reported."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from kmsplan.cli import main

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"  # moto's account
MANIFEST = """\
version: 1
stack: lint-live
account: "123456789012"
region: us-east-1
keys:
  app:
    rotation: {enabled: true}
    policy:
      Version: "2012-10-17"
      Statement:
        - Sid: Admin
          Effect: Allow
          Principal: {AWS: "arn:aws:iam::${account_id}:root"}
          Action: "kms:*"
          Resource: "*"
        - Sid: AppUse
          Effect: Allow
          Principal: {AWS: "arn:aws:iam::${account_id}:role/app"}
          Action: kms:Decrypt
          Resource: "*"
  not-created-yet:
    rotation: {enabled: true}
"""


def _create_live_key(endpoint: str, principal: str) -> str:
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=endpoint)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Admin",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": ["*"],
            },
            {
                "Sid": "AppUse",
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": "kms:Decrypt",
                "Resource": ["*"],
            },
        ],
    }
    key = kms.create_key(
        Policy=json.dumps(policy),
        Tags=[
            {"TagKey": "kmsplan:stack", "TagValue": "lint-live"},
            {"TagKey": "kmsplan:key", "TagValue": "app"},
            {"TagKey": "kmsplan:deletion-protection", "TagValue": "true"},
        ],
    )
    return str(key["KeyMetadata"]["KeyId"])


def test_live_policy_naming_a_deleted_role_is_reported(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_live_key(endpoint, "AROAEXAMPLEROLEID1234")
    manifest = tmp_path / "stack.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    code = main(
        [
            "lint",
            "--live",
            "--fail-on",
            "warning",
            "--endpoint-url",
            endpoint,
            "--region",
            "us-east-1",
            "--format",
            "json",
            str(manifest),
        ]
    )
    assert code == 1
    document = json.loads(capsys.readouterr().out)
    assert [(f["rule"], f["key"], f["message"]) for f in document["findings"]] == [
        (
            "KMS016",
            "app",
            "the live policy of key 'app' names AROAEXAMPLEROLEID1234: IAM unique ids left behind "
            "by deleted roles or users; those statements match nobody now",
        ),
    ]


def test_live_policy_with_existing_principals_has_no_finding(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_live_key(endpoint, f"arn:aws:iam::{ACCOUNT}:role/app")
    manifest = tmp_path / "stack.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    code = main(
        [
            "lint",
            "--live",
            "--fail-on",
            "warning",
            "--endpoint-url",
            endpoint,
            "--region",
            "us-east-1",
            str(manifest),
        ]
    )
    assert (code, capsys.readouterr().out) == (0, "No findings.\n")


def test_live_run_against_another_account_is_refused(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "stack.yaml"
    manifest.write_text(MANIFEST.replace('"123456789012"', '"999999999999"'), encoding="utf-8")
    code = main(
        ["lint", "--live", "--endpoint-url", endpoint, "--region", "us-east-1", str(manifest)]
    )
    captured = capsys.readouterr()
    assert (code, captured.out) == (1, "")
    assert captured.err == (
        "error: the manifest declares account 999999999999, but the credentials are for "
        "account 123456789012; refusing to read another account's keys\n"
    )
