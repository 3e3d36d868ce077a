"""Crash safety: whatever write an apply dies after, the next apply converges; whichever
write is answered HTTP 500, or however often KMS throttles, the same apply converges — no
duplicate key, no duplicate grant, no lost alias, and a clean plan after.

A multi-key manifest (keys, policy, rotation, a disabled key, aliases, grants) needs 8
writes. For every k from 1 to 8: the k-th write takes effect and then the process "dies" (an
exception raised from botocore's after-call hook: kmsplan never learns the call succeeded;
with --parallelism 1, so that no other write is made after it); or the k-th write is
answered HTTP 500 — before reaching KMS, or after it took effect.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apply_support import (
    MutatingCallCounter,
    SimulatedCrash,
    admin_policy,
    aliases,
    crash_after,
    create_role,
    grant_names,
    hooked_clients,
    kmsplan,
    server_error_at,
    stack_keys,
    throttle,
    write_manifest,
)

from kmsplan.apply import WRITE_OPERATIONS

pytestmark = pytest.mark.integration

WRITES = 8  # CreateKey x2, EnableKeyRotation, CreateAlias x2, CreateGrant x2, DisableKey


def manifest(tmp_path: Path, endpoint: str) -> Path:
    grantee = create_role(endpoint, "worker")
    policy = admin_policy(
        {
            "Sid": "Worker",
            "Effect": "Allow",
            "Principal": {"AWS": grantee},
            "Action": ["kms:Decrypt"],
            "Resource": "*",
        }
    )

    def grant(name: str) -> dict[str, Any]:
        return {"name": name, "grantee": grantee, "operations": ["Decrypt"]}

    keys = {
        "orders": {
            "aliases": ["alias/crash/orders"],
            "rotation": {"enabled": True},
            "policy": policy,
            "grants": [grant("worker")],
        },
        # Disabled, with a grant: its DisableKey is the last write, after the grant.
        "archive": {
            "enabled": False,
            "aliases": ["alias/crash/archive"],
            "grants": [grant("auditor")],
        },
    }
    return write_manifest(tmp_path / "crash.yaml", "crash", keys)


def assert_converged(path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    keys = stack_keys(endpoint, "crash")
    assert {name: len(found) for name, found in keys.items()} == {"orders": 1, "archive": 1}
    orders, archive = keys["orders"][0]["KeyId"], keys["archive"][0]["KeyId"]
    live_aliases = aliases(endpoint)
    assert live_aliases["alias/crash/orders"] == orders
    assert live_aliases["alias/crash/archive"] == archive
    assert grant_names(endpoint, orders) == ["kmsplan/worker"]
    assert grant_names(endpoint, archive) == ["kmsplan/auditor"]
    assert keys["archive"][0]["KeyState"] == "Disabled"
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (0, "No changes. KMS matches the manifests."), out


def test_the_manifest_needs_the_expected_number_of_writes(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counter = MutatingCallCounter()
    path = manifest(tmp_path, endpoint)
    with hooked_clients(monkeypatch, crash_after(counter)):
        code, _, _ = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert (code, counter.seen) == (0, WRITES)


@pytest.mark.parametrize("k", range(1, WRITES + 1))
def test_a_crash_after_any_write_is_finished_by_the_next_apply(
    k: int,
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = manifest(tmp_path, endpoint)
    counter = MutatingCallCounter(k)
    with hooked_clients(monkeypatch, crash_after(counter)), pytest.raises(SimulatedCrash):
        kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve", "--parallelism", "1")
    assert counter.seen == k
    assert_converged(path, endpoint, capsys)


@pytest.mark.parametrize("executed", [False, True], ids=["never-executed", "answer-lost"])
@pytest.mark.parametrize("k", range(1, WRITES + 1))
def test_a_server_error_on_any_write_still_converges_in_the_same_run(
    k: int,
    executed: bool,
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = manifest(tmp_path, endpoint)
    counter = MutatingCallCounter(k)
    with hooked_clients(monkeypatch, server_error_at(counter, executed=executed)):
        code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    assert counter.seen >= k
    assert_converged(path, endpoint, capsys)


def test_sustained_throttling_is_ridden_out(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = manifest(tmp_path, endpoint)
    throttled: list[str] = []
    install: Callable[[Any], None] = throttle(0.3, seed=20240601, seen=throttled)
    with hooked_clients(monkeypatch, install):
        code, out, err = kmsplan(
            capsys, endpoint, "apply", str(path), "--auto-approve", "--parallelism", "1"
        )
    assert code == 0, out + err
    # The injection really happened, reads and writes alike.
    assert len(throttled) >= 3
    assert set(throttled) & WRITE_OPERATIONS
    assert_converged(path, endpoint, capsys)
