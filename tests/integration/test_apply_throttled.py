"""A busy account: other callers leave kmsplan 10 % of each KMS write quota. kmsplan does not
know that (its rate limiter starts at the published quotas); KMS — the benchmark's proxy in
front of the moto server, which enforces quotas with ThrottlingException — throttles it. The
apply slows down to what is left and creates every key, saying it is being throttled."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from apply_support import aliases, kmsplan, stack_keys, write_manifest

from bench.emulator import Emulator, control
from bench.quotas import REAL_QUOTAS, scaled

pytestmark = pytest.mark.integration

KEYS = 20


@pytest.fixture
def busy_kms(endpoint: str) -> Iterator[str]:
    """The proxy (no latency) in front of the test session's moto server, enforcing 10 % of
    KMS's write quotas (reads at their published values)."""
    port = urlparse(endpoint).port
    assert port is not None
    quotas = scaled(dict(REAL_QUOTAS), read_scale=1.0, write_scale=0.1)
    emu = Emulator(latency_ms=0, quotas=quotas, upstream_port=port, share_symmetric_key=False)
    try:
        yield emu.endpoint
    finally:
        emu.stop()


def keys() -> dict[str, Any]:
    return {
        f"k{i:02d}": {"description": f"key {i}", "aliases": [f"alias/busy/k{i:02d}"]}
        for i in range(KEYS)
    }


def test_an_apply_at_a_tenth_of_the_write_quotas_creates_every_key(
    busy_kms: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(tmp_path / "busy.yaml", "busy", keys())

    code, out, err = kmsplan(capsys, busy_kms, "apply", str(path), "--auto-approve")

    assert code == 0, out + err
    assert out.splitlines()[-1] == f"Apply complete: {2 * KEYS} added, 0 changed, 0 deleted."
    created = stack_keys(busy_kms, "busy")
    assert {name: len(found) for name, found in created.items()} == {name: 1 for name in keys()}
    live = aliases(busy_kms)
    assert {f"alias/busy/{name}": found[0]["KeyId"] for name, found in created.items()} == {
        a: k for a, k in live.items() if a.startswith("alias/busy/")
    }
    # KMS really did throttle, and the progress lines said so.
    stats = control(busy_kms, "stats")["ops"]
    assert stats["kms:CreateKey"]["throttled"] > 0
    throttled = [line for line in err.splitlines() if "throttled by KMS" in line]
    assert throttled, err
    assert all(
        re.fullmatch(
            r"\[\d+/\d+\] \S+: (CreateKey|CreateAlias) throttled by KMS \(ThrottlingException\):"
            r" other callers share the account's quota; slowing down and retrying",
            line,
        )
        for line in throttled
    ), throttled
    assert "FAILED" not in err


def test_the_time_budget_is_the_only_way_a_throttled_apply_gives_up(
    busy_kms: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    few = {name: spec for name, spec in keys().items() if name in ("k00", "k01", "k02", "k03")}
    path = write_manifest(tmp_path / "busy.yaml", "busy", few)

    code, out, err = kmsplan(
        capsys, busy_kms, "apply", str(path), "--auto-approve", "--timeout", "1"
    )

    # CreateKey at 0.5/s: one key fits the burst, the rest are throttled until the budget
    # runs out; each one left fails with what KMS said and why kmsplan stopped.
    assert code == 1, out + err
    failed = [
        re.sub(r"^\[\d+/\d+\] ", "", line.strip())
        for line in err.splitlines()
        if ": FAILED at CreateKey: " in line
    ]
    assert failed, err
    assert all(
        re.fullmatch(
            r"key\.k0\d: FAILED at CreateKey: (ThrottlingException: Rate exceeded \(still"
            r" throttled when the apply's time budget of 1 s \(--timeout\) ran out\)|Timeout:"
            r" the apply's time budget of 1 s \(--timeout\) is spent; not called)"
            r" \(done: none; not done: CreateKey\)",
            line,
        )
        for line in failed
    ), failed
    # What KMS holds is exactly what the report says was created; re-running converges.
    created = stack_keys(busy_kms, "busy")
    assert len(created) == len(few) - len({line.split(":")[0] for line in failed})
    code, out, err = kmsplan(capsys, busy_kms, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    assert {name: len(found) for name, found in stack_keys(busy_kms, "busy").items()} == {
        name: 1 for name in few
    }


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(
    value: str, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(tmp_path / "busy.yaml", "busy", {"k00": {}})
    code, _, err = kmsplan(
        capsys, endpoint, "apply", str(path), "--auto-approve", "--timeout", value
    )
    assert code == 1  # kmsplan's usage errors exit 1, like every refusal
    assert "Invalid value for '--timeout'" in err
    assert stack_keys(endpoint, "busy") == {}
