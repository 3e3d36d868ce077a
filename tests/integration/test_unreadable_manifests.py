"""A manifest folder with an entry that cannot be read (a dangling symlink, a folder named
like a manifest, a link out of the tree) stops plan and apply before any AWS call: its keys
are never planned for deletion, and nothing changes in KMS."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import REGION, make_kms_client

from kmsplan.cli import main

pytestmark = pytest.mark.integration

ORDERS = "version: 1\nstack: payments\nkeys:\n  orders: {deletion: {protected: false}}\n"
REFUNDS = "version: 1\nstack: payments\nkeys:\n  refunds: {deletion: {protected: false}}\n"
DELETE_FLAGS = ["--allow-delete", "--allow-delete-all", "--ignore-usage"]


def key_states(kms: Any) -> dict[str, str]:
    return {
        k["KeyId"]: kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"]
        for k in kms.list_keys()["Keys"]
    }


def dangling(path: Path) -> str:
    path.symlink_to(path.parent / "moved-away.yaml")
    return "manifest is a symlink to nothing (its target does not exist)"


def folder(path: Path) -> str:
    path.mkdir()
    return "manifest is a folder, not a file"


def outside(path: Path) -> str:
    target = path.parent.parent / "elsewhere.yaml"
    target.write_text(REFUNDS, encoding="utf-8")
    path.symlink_to(target)
    root = path.parent.resolve()
    return (
        f"manifest leads outside the manifest folder {root}; refused, not read (files "
        f"inside the manifest folder {root})"
    )


@pytest.mark.parametrize("breakage", [dangling, folder, outside], ids=lambda f: f.__name__)
@pytest.mark.parametrize("command", ["plan", "apply"])
def test_an_unreadable_manifest_stops_the_run_and_deletes_nothing(
    endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    breakage: Callable[[Path], str],
) -> None:
    manifests = tmp_path / "stack"
    manifests.mkdir()
    (manifests / "orders.yaml").write_text(ORDERS, encoding="utf-8")
    (manifests / "refunds.yaml").write_text(REFUNDS, encoding="utf-8")
    args = ["--endpoint-url", endpoint, "--region", REGION, *DELETE_FLAGS]
    extra = ["--auto-approve"] if command == "apply" else []
    assert main(["apply", str(manifests), "--auto-approve", *args]) == 0
    kms = make_kms_client(endpoint)
    before = key_states(kms)
    assert len(before) == 2
    capsys.readouterr()

    os.remove(manifests / "refunds.yaml")
    message = breakage(manifests / "refunds.yaml")
    code = main([command, str(manifests), *extra, *args])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err == f"{manifests}/refunds.yaml:0:0: error: {message}\n"
    assert key_states(kms) == before
