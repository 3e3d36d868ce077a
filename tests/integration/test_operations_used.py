"""Every AWS operation that plan and apply really send is in the table of operations
(`kmsplan.aws.operations`), and so allowed by `kmsplan iam-policy`: recorded with a botocore
event hook on every client kmsplan creates, over a life cycle that makes nearly every call."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from apply_support import (
    admin_policy,
    create_role,
    hooked_clients,
    kmsplan,
    write_manifest,
)

from kmsplan.aws.operations import OPERATIONS
from kmsplan.aws.permissions import allowed_actions, policy

pytestmark = pytest.mark.integration

CLIENTS = ("kms", "kms_no_retry", "sts", "iam", "tagging")


class Recorder:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def install(self, client: Any) -> None:
        service = client.meta.service_model.service_name

        def before_call(event_name: str = "", **_: Any) -> None:
            with self._lock:
                self.seen.add((service, event_name.rsplit(".", 1)[-1]))

        client.meta.events.register("before-call", before_call)


def keys(*, grantee: str, version: int) -> dict[str, Any]:
    orders: dict[str, Any] = {
        "description": f"Orders v{version}",
        "aliases": ["alias/shop/orders"] if version == 1 else [],
        "rotation": {"enabled": version == 1},
        "deletion": {"protected": False, "window_days": 7},
        "tags": {"team": "shop"} if version == 1 else {"owner": "checkout"},
        "policy": admin_policy(),
        "enabled": version == 1,
    }
    if version == 1:
        orders["grants"] = [{"name": "lambda", "grantee": grantee, "operations": ["Decrypt"]}]
    audit = {"description": "Audit", "aliases": [] if version == 1 else ["alias/shop/orders"]}
    return {"orders": orders, "audit": audit}


def test_every_operation_plan_and_apply_send_is_in_the_table(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grantee = create_role(endpoint, "orders-lambda")
    manifest = tmp_path / "shop.yaml"
    recorder = Recorder()
    with hooked_clients(monkeypatch, recorder.install, client_names=CLIENTS):
        write_manifest(manifest, "shop", keys(grantee=grantee, version=1))
        code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
        assert code == 0, out + err
        # Update in place: description, tags, rotation, disable, grant revoked, alias moved.
        write_manifest(manifest, "shop", keys(grantee=grantee, version=2))
        code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
        assert code == 0, out + err
        # Delete a key through the gate, then declare it again: it is restored.
        write_manifest(manifest, "shop", {"audit": keys(grantee=grantee, version=2)["audit"]})
        code, out, err = kmsplan(
            capsys,
            endpoint,
            "apply",
            str(manifest),
            "--auto-approve",
            "--allow-delete",
            "--ignore-usage",
        )
        assert code == 0, out + err
        write_manifest(manifest, "shop", keys(grantee=grantee, version=1))
        code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
        assert code == 0, out + err

    listed = {(op.service, op.name) for op in OPERATIONS}
    assert recorder.seen - listed == set()
    # The life cycle reached reads, writes and the checks of every service.
    assert {
        ("sts", "GetCallerIdentity"),
        ("resourcegroupstaggingapi", "GetResources"),
        ("iam", "GetRole"),
        ("kms", "ListAliases"),
        ("kms", "GetKeyPolicy"),
        ("kms", "CreateKey"),
        ("kms", "CreateGrant"),
        ("kms", "RevokeGrant"),
        ("kms", "UpdateAlias"),
        ("kms", "TagResource"),
        ("kms", "UntagResource"),
        ("kms", "DisableKey"),
        ("kms", "DisableKeyRotation"),
        ("kms", "ScheduleKeyDeletion"),
        ("kms", "CancelKeyDeletion"),
        ("kms", "EnableKey"),
        ("kms", "UpdateKeyDescription"),
    } <= recorder.seen
    # And the apply role's policy allows each of them.
    actions = allowed_actions(policy("apply"))
    by_row = {(op.service, op.name): op.iam_action for op in OPERATIONS}
    assert {by_row[s] for s in recorder.seen} <= actions
