"""The run layer end to end against the moto server: the order of a run's steps (guards, then
the stack lock around the live read, the approval and every write), one account and Region
guard for every command that reads live state, and `--region` checked like ``region:``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apply_support import ACCOUNT, REGION, admin_policy, kmsplan, stack_keys, write_manifest

from kmsplan.commands import apply as apply_command
from kmsplan.model import Placement
from kmsplan.run import planning as run_planning
from kmsplan.run import session as run_session

pytestmark = pytest.mark.integration

KEYS = {"orders": {"description": "Orders", "policy": admin_policy()}}


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the run's steps: the lock taken and released, the live read, the approval and
    the applier's start and end."""
    seen: list[str] = []

    @contextlib.contextmanager
    def lock(stack: str, placement: Placement, held: Any = None) -> Iterator[None]:
        seen.append(f"lock {stack} {placement}")
        try:
            yield
        finally:
            seen.append("unlock")

    def read_live(*args: Any, **kwargs: Any) -> Any:
        seen.append("read")
        return real_read(*args, **kwargs)

    def approve(*, auto_approve: bool) -> None:
        seen.append("approve")

    def apply_plan(*args: Any, **kwargs: Any) -> Any:
        seen.append("apply")
        result = real_apply(*args, **kwargs)
        seen.append("applied")
        return result

    real_read, real_apply = run_planning.read_live, run_session.apply_plan
    monkeypatch.setattr(run_session, "stack_lock", lock)
    monkeypatch.setattr(run_planning, "read_live", read_live)
    monkeypatch.setattr(apply_command, "approve", approve)
    monkeypatch.setattr(run_session, "apply_plan", apply_plan)
    return seen


def test_the_lock_is_held_from_before_the_live_read_until_after_the_last_write(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str], steps: list[str]
) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", "shop", KEYS)
    code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest))
    assert code == 0, out + err
    assert steps == [
        f"lock shop {ACCOUNT}/{REGION}",
        "read",
        "approve",
        "apply",
        "applied",
        "unlock",
    ]
    assert list(stack_keys(endpoint, "shop")) == ["orders"]


def test_the_lock_is_released_when_the_run_is_refused_after_taking_it(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    steps: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kmsplan.errors import RefusedError

    def refuse(*, auto_approve: bool) -> None:
        steps.append("approve")
        raise RefusedError("apply cancelled: the answer was not 'yes'. Nothing was changed")

    monkeypatch.setattr(apply_command, "approve", refuse)
    manifest = write_manifest(tmp_path / "m.yaml", "shop", KEYS)
    code, _, err = kmsplan(capsys, endpoint, "apply", str(manifest))
    assert (code, err) == (
        1,
        "error: apply cancelled: the answer was not 'yes'. Nothing was changed\n",
    )
    assert steps == [f"lock shop {ACCOUNT}/{REGION}", "read", "approve", "unlock"]
    assert stack_keys(endpoint, "shop") == {}


def test_the_lock_is_released_on_ctrl_c_during_apply(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    steps: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        steps.append("apply")
        raise KeyboardInterrupt

    monkeypatch.setattr(run_session, "apply_plan", interrupted)
    manifest = write_manifest(tmp_path / "m.yaml", "shop", KEYS)
    code, _, err = kmsplan(capsys, endpoint, "apply", str(manifest))
    assert code == 1
    assert err.startswith("\nerror: apply interrupted: no new call was started")
    assert steps == [f"lock shop {ACCOUNT}/{REGION}", "read", "approve", "apply", "unlock"]
    assert stack_keys(endpoint, "shop") == {}


@pytest.mark.parametrize("command", ["plan", "apply", "lint"])
def test_a_run_refused_by_the_account_guard_takes_no_lock_and_reads_nothing(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    steps: list[str],
    command: str,
) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", "shop", KEYS, account="999999999999")
    extra = ["--live"] if command == "lint" else ["--auto-approve"] if command == "apply" else []
    code, out, err = kmsplan(capsys, endpoint, command, *extra, str(manifest))
    assert (code, out) == (1, "")
    assert "999999999999" in err and f"account {ACCOUNT}" in err
    assert steps == []


def test_lint_live_refuses_a_region_flag_that_contradicts_the_manifest(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str], steps: list[str]
) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", "shop", KEYS, region="eu-west-1")
    code, out, err = kmsplan(capsys, endpoint, "lint", "--live", "--region", REGION, str(manifest))
    assert (code, out) == (1, "")
    assert err == (
        f"error: the manifests declare region eu-west-1 (region:), but --region is {REGION}; "
        "refusing to read another Region's keys. Drop --region or fix the manifest. "
        "Nothing was read\n"
    )
    assert steps == []


def test_lint_live_reads_the_region_the_manifest_declares(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str], steps: list[str]
) -> None:
    # The manifest's region: wins over the standard chain (AWS_DEFAULT_REGION is us-east-1).
    manifest = write_manifest(tmp_path / "m.yaml", "shop", KEYS, region="eu-west-1")
    code, out, err = kmsplan(
        capsys, endpoint, "lint", "--live", "--fail-on", "never", str(manifest)
    )
    assert code == 0, out + err
    assert steps == [f"lock shop {ACCOUNT}/eu-west-1", "unlock"]


@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["apply", "--auto-approve"],
        ["lint", "--live"],
        ["apply", "--plan", "PLAN", "--auto-approve"],
    ],
    ids=["plan", "apply", "lint-live", "apply-saved-plan"],
)
@pytest.mark.parametrize("region", ["mars-1", "US-EAST-1", "us-east-1a", ""])
def test_an_invalid_region_flag_is_refused_before_any_aws_call(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    steps: list[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    region: str,
) -> None:
    from kmsplan.run import clients as run_clients

    def no_aws(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no AWS client may be created")

    manifest = write_manifest(tmp_path / "m.yaml", "shop", KEYS)
    saved = tmp_path / "plan.json"
    assert kmsplan(capsys, endpoint, "plan", str(manifest), "--out", str(saved))[0] == 0
    monkeypatch.setattr(run_clients.AwsClients, "create", no_aws)
    args = [str(saved) if a == "PLAN" else a for a in command]
    if "--plan" not in command:
        args.append(str(manifest))
    code, out, err = kmsplan(capsys, endpoint, *args, "--region", region)
    assert (code, out) == (1, "")
    assert err == (
        f"error: invalid --region {region!r}: expected a Region name such as eu-west-1. "
        "Nothing was read or changed\n"
    )
    assert stack_keys(endpoint, "shop") == {}
