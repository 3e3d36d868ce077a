"""`kmsplan apply` on keys declared disabled, against the moto server made to behave like real
KMS: CreateGrant, EnableKeyRotation and DisableKeyRotation on a Disabled key are answered
DisabledException (moto accepts them). Each apply converges: the next plan is clean and the key
ends disabled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apply_support import (
    client,
    create_role,
    deny,
    grant_names,
    hooked_clients,
    key_id,
    kmsplan,
    stack_keys,
    write_manifest,
)
from helpers import refuse_on_disabled_key

pytestmark = pytest.mark.integration

CLEAN = "No changes. KMS matches the manifests."


def like_real_kms(endpoint: str, refused: list[str]) -> Callable[[Any], None]:
    """Refuse, as real KMS does, the operations it refuses on a Disabled key."""
    reader = client(endpoint)
    return lambda kms: refuse_on_disabled_key(kms, refused, reader=reader)


def grants(grantee: str, *names: str) -> list[dict[str, Any]]:
    return [{"name": n, "grantee": grantee, "operations": ["Decrypt"]} for n in names]


def apply(capsys: pytest.CaptureFixture[str], endpoint: str, manifest: Path) -> tuple[int, str]:
    code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    return code, out + err


def assert_clean(capsys: pytest.CaptureFixture[str], endpoint: str, manifest: Path) -> None:
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(manifest), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (0, CLEAN), out


def state(endpoint: str, name: str) -> str:
    (metadata,) = stack_keys(endpoint, "vault")[name]
    return str(metadata["KeyState"])


def test_disabled_keys_get_their_grants_and_rotation_and_converge(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = create_role(endpoint, "worker")
    refused: list[str] = []
    path = tmp_path / "vault.yaml"
    with hooked_clients(monkeypatch, like_real_kms(endpoint, refused)):
        # (a) A new key declared disabled, with a grant and rotation.
        archive: dict[str, Any] = {
            "enabled": False,
            "rotation": {"enabled": True},
            "grants": grants(worker, "reader"),
        }
        ledger: dict[str, Any] = {"grants": grants(worker, "reader")}
        manifest = write_manifest(path, "vault", {"archive": archive, "ledger": ledger})
        code, output = apply(capsys, endpoint, manifest)
        assert code == 0, output
        assert_clean(capsys, endpoint, manifest)
        archive_id = key_id(endpoint, "vault", "archive")
        assert state(endpoint, "archive") == "Disabled"
        assert grant_names(endpoint, archive_id) == ["kmsplan/reader"]

        # (c) It stays disabled but needs a new grant and rotation off: enabled for the apply.
        archive.update(grants=grants(worker, "reader", "writer"), rotation={"enabled": False})
        manifest = write_manifest(path, "vault", {"archive": archive, "ledger": ledger})
        code, out, _ = kmsplan(capsys, endpoint, "plan", str(manifest))
        assert "# enabled temporarily: KMS refuses CreateGrant/EnableKeyRotation" in out
        code, output = apply(capsys, endpoint, manifest)
        assert code == 0, output
        assert_clean(capsys, endpoint, manifest)
        assert state(endpoint, "archive") == "Disabled"
        assert grant_names(endpoint, archive_id) == ["kmsplan/reader", "kmsplan/writer"]
        rotation = client(endpoint).get_key_rotation_status(KeyId=archive_id)
        assert rotation["KeyRotationEnabled"] is False

        # (b) An enabled key is disabled in the same run that adds a grant to it.
        ledger.update(enabled=False, grants=grants(worker, "reader", "auditor"))
        manifest = write_manifest(path, "vault", {"archive": archive, "ledger": ledger})
        code, output = apply(capsys, endpoint, manifest)
        assert code == 0, output
        assert_clean(capsys, endpoint, manifest)
        ledger_id = key_id(endpoint, "vault", "ledger")
        assert state(endpoint, "ledger") == "Disabled"
        assert grant_names(endpoint, ledger_id) == ["kmsplan/auditor", "kmsplan/reader"]
    # Nothing was ever attempted on a disabled key.
    assert refused == []


def test_an_apply_stopped_before_the_trailing_disable_is_finished_by_the_next_one(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = create_role(endpoint, "worker")
    refused: list[str] = []
    archive: dict[str, Any] = {"enabled": False, "grants": grants(worker, "reader")}
    manifest = write_manifest(tmp_path / "vault.yaml", "vault", {"archive": archive})
    with hooked_clients(monkeypatch, like_real_kms(endpoint, refused)):
        assert apply(capsys, endpoint, manifest)[0] == 0
        archive["grants"] = grants(worker, "reader", "writer")
        manifest = write_manifest(tmp_path / "vault.yaml", "vault", {"archive": archive})
        # The temporary enable and the grant are made; the disable is refused.
        with hooked_clients(monkeypatch, deny("DisableKey")):
            code, output = apply(capsys, endpoint, manifest)
        assert code == 1
        assert "key.archive.disable: FAILED at DisableKey: AccessDeniedException" in output
        assert state(endpoint, "archive") == "Enabled"
        # The next plan sees an enabled key declared disabled, and disables it.
        code, out, _ = kmsplan(capsys, endpoint, "plan", str(manifest))
        assert "  ~ key.archive.disable will be disabled\n" in out
        assert out.splitlines()[-1].startswith("Plan: 0 to add, 1 to change, 0 to delete")
        assert apply(capsys, endpoint, manifest)[0] == 0
        assert_clean(capsys, endpoint, manifest)
    assert state(endpoint, "archive") == "Disabled"
    assert refused == []
