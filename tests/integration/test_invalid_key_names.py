"""A key of the stack whose `kmsplan:key` tag is not a valid logical name (no manifest could
declare it) is left alone as a key outside the stack, with a warning that says how to fix the
tag, instead of blocking every plan with advice that cannot be followed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import REGION, make_kms_client

from kmsplan.aws.client import AwsClients
from kmsplan.aws.reader import read_live
from kmsplan.cli import main
from kmsplan.model import Key, Stack

pytestmark = pytest.mark.integration

STACK = "payments"
MANIFEST = "version: 1\nstack: payments\nkeys:\n  orders: {deletion: {protected: false}}\n"


def create_key(kms: Any, name: str) -> str:
    tags = {
        "kmsplan:stack": STACK,
        "kmsplan:key": name,
        "kmsplan:deletion-protection": "false",
        "kmsplan:deletion-window": "30",
    }
    answer = kms.create_key(Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])
    return str(answer["KeyMetadata"]["KeyId"])


def warning(key_id: str, name: str) -> str:
    return (
        f"key {key_id} is tagged kmsplan:stack=payments but its kmsplan:key tag {name} is not a "
        "valid key name (1-64 letters, digits, '_' or '-', starting with a letter or digit), so "
        "no manifest can declare it: it is left alone as a key outside the stack. To manage it "
        f"as key NAME: aws kms tag-resource --key-id {key_id} --tags "
        "TagKey=kmsplan:key,TagValue=NAME; to release it from the stack: aws kms "
        f"untag-resource --key-id {key_id} --tag-keys kmsplan:stack kmsplan:key"
    )


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("bad name!", '"bad name!"'),
        ("x" * 65, f'"{"x" * 65}"'),
        ("-a", '"-a"'),
        ("a\nb", '"a\\nb"'),
    ],
    ids=["space", "too-long", "leading-dash", "newline"],
)
def test_the_reader_leaves_a_key_with_an_invalid_name_out_with_a_warning(
    endpoint: str, name: str, shown: str
) -> None:
    kms = make_kms_client(endpoint)
    orders = create_key(kms, "orders")
    bad = create_key(kms, name)
    clients = AwsClients.create(profile=None, region=REGION, endpoint_url=endpoint)
    live = read_live(clients, Stack(name=STACK, region=REGION, keys=(Key(name="orders"),)))
    assert [(k.name, k.key_id) for k in live.keys] == [("orders", orders)]
    assert live.warnings == (warning(bad, shown),)


def test_a_key_with_an_invalid_name_blocks_no_plan_and_is_never_touched(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kms = make_kms_client(endpoint)
    create_key(kms, "orders")
    bad = create_key(kms, "bad name!")
    before = kms.describe_key(KeyId=bad)["KeyMetadata"]
    manifest = tmp_path / "payments.yaml"
    # Even with every deletion flag, the key is not the stack's to delete.
    manifest.write_text(MANIFEST, encoding="utf-8")
    flags = ["--allow-delete", "--allow-delete-all", "--ignore-usage"]
    code = main(
        [
            "plan",
            str(manifest),
            "--format",
            "json",
            "--detailed-exitcode",
            *flags,
            "--endpoint-url",
            endpoint,
            "--region",
            REGION,
        ]
    )
    out, _ = capsys.readouterr()
    document = json.loads(out)
    assert code == 0
    assert document["changes"] == []
    assert document["warnings"] == [warning(bad, '"bad name!"')]
    code = main(
        [
            "apply",
            str(manifest),
            "--auto-approve",
            *flags,
            "--endpoint-url",
            endpoint,
            "--region",
            REGION,
        ]
    )
    assert code == 0
    assert kms.describe_key(KeyId=bad)["KeyMetadata"] == before
    assert {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=bad)["Tags"]}[
        "kmsplan:key"
    ] == "bad name!"
