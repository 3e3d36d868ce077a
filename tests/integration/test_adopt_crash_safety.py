"""Crash safety of an adoption: whatever write an apply dies after — the adoption's
TagResource among them — the next apply converges on the same key, and the plan is clean.

The adopted key's block changes its description, adds an alias and a grant: 4 writes
(UpdateKeyDescription, TagResource, CreateAlias, CreateGrant), made one at a time
(--parallelism 1) so that no write follows the one the process dies after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apply_support import (
    MutatingCallCounter,
    SimulatedCrash,
    admin_policy,
    aliases,
    client,
    crash_after,
    create_role,
    grant_names,
    hooked_clients,
    kmsplan,
    stack_keys,
    write_manifest,
)

pytestmark = pytest.mark.integration

WRITES = 4
TAG_RESOURCE = 2  # the adoption's TagResource is the second write


def adoption(tmp_path: Path, endpoint: str) -> tuple[Path, str]:
    worker = create_role(endpoint, "worker")
    kms = client(endpoint)
    key_id = str(
        kms.create_key(Description="made by hand", Policy=json.dumps(admin_policy()))[
            "KeyMetadata"
        ]["KeyId"]
    )
    block = {
        "adopt": key_id,
        "description": "adopted",
        "aliases": ["alias/adopted"],
        "policy": admin_policy(),
        "grants": [{"name": "worker", "grantee": worker, "operations": ["Decrypt"]}],
    }
    return write_manifest(tmp_path / "adopt.yaml", "adopt", {"legacy": block}), key_id


def test_the_adoption_needs_the_expected_writes(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, _ = adoption(tmp_path, endpoint)
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(path))
    assert "calls: UpdateKeyDescription, TagResource" in out
    counter = MutatingCallCounter()
    with hooked_clients(monkeypatch, crash_after(counter)):
        code, _, _ = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert (code, counter.seen) == (0, WRITES)


@pytest.mark.parametrize("k", range(1, WRITES + 1))
def test_a_crash_after_any_write_of_an_adoption_converges_on_the_same_key(
    k: int,
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, key_id = adoption(tmp_path, endpoint)
    counter = MutatingCallCounter(k)
    with hooked_clients(monkeypatch, crash_after(counter)), pytest.raises(SimulatedCrash):
        kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve", "--parallelism", "1")
    assert counter.seen == k
    if k >= TAG_RESOURCE:
        # The key is the stack's now: the next plan finds it by its tags.
        assert [m["KeyId"] for m in stack_keys(endpoint, "adopt")["legacy"]] == [key_id]

    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    assert [m["KeyId"] for m in stack_keys(endpoint, "adopt")["legacy"]] == [key_id]
    assert len(client(endpoint).list_keys()["Keys"]) == 1
    assert {a: t for a, t in aliases(endpoint).items() if not a.startswith("alias/aws/")} == {
        "alias/adopted": key_id
    }
    assert grant_names(endpoint, key_id) == ["kmsplan/worker"]
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (0, "No changes. KMS matches the manifests."), out
