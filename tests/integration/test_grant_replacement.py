"""A changed grant is replaced without an access gap: the new grant is created first (KMS
allows two grants with one name), then the old one revoked. A create that never happens
leaves the old grant in place; a crash between the two leaves both, and the next apply
revokes the old one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apply_support import (
    SimulatedCrash,
    client,
    create_role,
    hooked_clients,
    kmsplan,
    stack_keys,
    write_manifest,
)

pytestmark = pytest.mark.integration


def manifest(tmp_path: Path, grantee: str, operations: list[str]) -> Path:
    keys = {"data": {"grants": [{"name": "app", "grantee": grantee, "operations": operations}]}}
    return write_manifest(tmp_path / "grants.yaml", "grants", keys)


def grants_of(endpoint: str, key_id: str) -> list[tuple[str, tuple[str, ...]]]:
    listed = client(endpoint).list_grants(KeyId=key_id)["Grants"]
    return sorted((g["Name"], tuple(sorted(g["Operations"]))) for g in listed)


def on_create_grant(when: str, seen: list[str]) -> Callable[[Any], None]:
    """Kill the process `when` ("before" or "after") the first CreateGrant."""

    def install(kms: Any) -> None:
        def hook(event_name: str, **_: Any) -> None:
            seen.append(event_name)
            raise SimulatedCrash(f"crash {when} CreateGrant")

        kms.meta.events.register(f"{when}-call.kms.CreateGrant", hook)

    return install


@pytest.fixture
def applied(tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """A key with grant `app` for Decrypt, applied; returns (grantee, key id)."""
    grantee = create_role(endpoint, "app")
    path = manifest(tmp_path, grantee, ["Decrypt"])
    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    return grantee, stack_keys(endpoint, "grants")["data"][0]["KeyId"]


def test_a_changed_grant_is_created_before_the_old_one_is_revoked(
    applied: tuple[str, str],
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    grantee, key_id = applied
    path = manifest(tmp_path, grantee, ["Decrypt", "GenerateDataKey"])
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(path))
    assert code == 0
    assert "calls: CreateGrant, RevokeGrant" in out
    assert "created first, then the old one is revoked" in out
    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    assert grants_of(endpoint, key_id) == [("kmsplan/app", ("Decrypt", "GenerateDataKey"))]


def test_a_create_that_never_happens_leaves_the_old_grant_in_place(
    applied: tuple[str, str],
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grantee, key_id = applied
    path = manifest(tmp_path, grantee, ["Decrypt", "GenerateDataKey"])
    seen: list[str] = []
    with (
        hooked_clients(monkeypatch, on_create_grant("before", seen)),
        pytest.raises(SimulatedCrash),
    ):
        kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert seen == ["before-call.kms.CreateGrant"]
    # Revoke-then-create would have left the grantee with no grant at all here.
    assert grants_of(endpoint, key_id) == [("kmsplan/app", ("Decrypt",))]


def test_a_crash_between_create_and_revoke_leaves_both_and_the_next_apply_converges(
    applied: tuple[str, str],
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grantee, key_id = applied
    path = manifest(tmp_path, grantee, ["Decrypt", "GenerateDataKey"])
    seen: list[str] = []
    with hooked_clients(monkeypatch, on_create_grant("after", seen)), pytest.raises(SimulatedCrash):
        kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert grants_of(endpoint, key_id) == [
        ("kmsplan/app", ("Decrypt",)),
        ("kmsplan/app", ("Decrypt", "GenerateDataKey")),
    ]
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(path))
    assert "duplicate grants with this name: the extra ones are revoked" in out
    assert "calls: RevokeGrant" in out
    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    assert grants_of(endpoint, key_id) == [("kmsplan/app", ("Decrypt", "GenerateDataKey"))]
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (0, "No changes. KMS matches the manifests.")
