"""`kmsplan apply` of several stacks, against the moto server: three stacks in two accounts and
two Regions applied in one run and planned clean after; each stack planned, gated and applied
on its own, one failing never stopping the others — unless --fail-fast, which refuses the run
before any change when a stack cannot be applied, and stops at the first stack that fails."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from apply_support import ACCOUNT, _answer, hooked_clients, kmsplan, write_manifest
from test_many_stacks import OTHER, ROLE, keys_in

pytestmark = pytest.mark.integration

DENIED = b'{"__type": "AccessDeniedException", "message": "denied (injected)"}'


def org(folder: Path) -> Path:
    folder.mkdir()
    write_manifest(folder / "east.yaml", "east", {"a": {}}, account=ACCOUNT, region="us-east-1")
    write_manifest(folder / "west.yaml", "west", {"b": {}, "c": {}}, region="eu-west-1")
    write_manifest(
        folder / "other.yaml", "other", {"d": {}}, account=OTHER, region="us-east-1", role=ROLE
    )
    return folder


def everything(endpoint: str) -> tuple[list[str], list[str], list[str]]:
    return (
        keys_in(endpoint, region="us-east-1"),
        keys_in(endpoint, region="eu-west-1"),
        keys_in(endpoint, region="us-east-1", role=True),
    )


def test_one_apply_of_three_stacks_in_two_accounts_and_regions_then_a_clean_plan(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = org(tmp_path / "kms")
    log = tmp_path / "audit.jsonl"
    code, out, err = kmsplan(
        capsys, endpoint, "apply", str(folder), "--auto-approve", "--log", str(log)
    )
    assert code == 0, out + err
    assert out.splitlines()[:4] == [
        "Stacks (3):",
        f"  east  {ACCOUNT}, us-east-1",
        f"  other  {OTHER}, us-east-1",
        "  west  (account of the credentials), eu-west-1",
    ]
    assert "Run: 3 stacks: 3 with changes, 0 blocked, 0 failed, 0 without changes." in out
    report = out[out.index("Apply of 3 stacks:") :].splitlines()
    assert report == [
        "Apply of 3 stacks:",
        "  east: Apply complete: 1 added, 0 changed, 0 deleted.",
        "  other: Apply complete: 1 added, 0 changed, 0 deleted.",
        "  west: Apply complete: 2 added, 0 changed, 0 deleted.",
    ]
    assert err.startswith("Planning 3 stacks: east, other, west.\n")  # before any read
    assert "west: [0/2] key.c: creating..." in err.splitlines()  # progress names its stack
    assert everything(endpoint) == (["east"], ["west", "west"], ["other"])
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {line["stack"] for line in lines if line["operation"] == "CreateKey"} == {
        "east",
        "other",
        "west",
    }
    code, out, err = kmsplan(capsys, endpoint, "plan", str(folder), "--detailed-exitcode")
    assert (code, err) == (0, "Planning 3 stacks: east, other, west.\n"), out + err
    assert out.splitlines()[-1] == (
        "Run: 3 stacks: 0 with changes, 0 blocked, 0 failed, 3 without changes."
    )


def test_a_stack_with_a_wrong_account_is_not_applied_and_the_others_are(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = org(tmp_path / "kms")
    write_manifest(
        folder / "east.yaml", "east", {"a": {}}, account="999999999999", region="us-east-1"
    )
    code, out, err = kmsplan(capsys, endpoint, "apply", str(folder), "--auto-approve")
    assert code == 1, out + err
    assert "  east: not applied: error: the manifests declare account 999999999999" in err
    assert "  west: Apply complete: 2 added" in err
    assert everything(endpoint) == ([], ["west", "west"], ["other"])


def test_a_blocked_stack_is_refused_and_the_others_are_applied(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = org(tmp_path / "kms")
    assert kmsplan(capsys, endpoint, "apply", str(folder), "--auto-approve")[0] == 0
    write_manifest(folder / "west.yaml", "west", {"b": {}}, region="eu-west-1")  # c deleted
    write_manifest(folder / "east.yaml", "east", {"a": {}, "a2": {}}, region="us-east-1")
    code, out, err = kmsplan(capsys, endpoint, "apply", str(folder), "--auto-approve")
    assert code == 1, out + err
    assert "Run: 3 stacks: 1 with changes, 1 blocked, 0 failed, 1 without changes." in out
    assert "  west: not applied: error: refusing to apply: 1 change(s) blocked" in err
    assert "  east: Apply complete: 1 added" in err
    assert "  other: no changes" in err
    assert everything(endpoint) == (["east", "east"], ["west", "west"], ["other"])


def test_fail_fast_refuses_the_whole_run_when_a_stack_cannot_be_applied(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = org(tmp_path / "kms")
    write_manifest(
        folder / "other.yaml", "other", {"d": {}}, account="999999999999", region="us-east-1"
    )
    code, out, err = kmsplan(
        capsys, endpoint, "apply", str(folder), "--auto-approve", "--fail-fast"
    )
    assert code == 1, out + err
    assert err.strip().splitlines()[-1] == (
        "error: refusing to apply: --fail-fast, and 1 stack(s) cannot be applied (other); "
        "nothing was changed in any stack"
    )
    assert everything(endpoint) == ([], [], [])


def deny_create_key_of(stack: str) -> Any:
    """CreateKey for a key of `stack` is answered AccessDenied (KMS never sees it)."""
    tag = re.compile(rb'"TagKey": "kmsplan:stack", "TagValue": "' + stack.encode() + rb'"')

    def install(kms: Any) -> None:
        def before_send(event_name: str, request: Any, **_: Any) -> Any:
            if event_name.endswith(".CreateKey") and tag.search(request.body or b""):
                return _answer(400, DENIED)
            return None

        kms.meta.events.register_first("before-send.kms", before_send)

    return install


def test_an_apply_that_fails_in_one_stack_does_not_stop_the_others(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = org(tmp_path / "kms")
    with hooked_clients(monkeypatch, deny_create_key_of("east")):
        code, out, err = kmsplan(capsys, endpoint, "apply", str(folder), "--auto-approve")
    assert code == 1, out + err
    assert "  east: Apply failed: 0 added" in err
    assert "AccessDeniedException" in err
    assert "  other: Apply complete: 1 added" in err
    assert "  west: Apply complete: 2 added" in err
    assert err.strip().splitlines()[-1].startswith("Re-run kmsplan apply to finish")
    assert everything(endpoint) == ([], ["west", "west"], ["other"])


def test_fail_fast_applies_one_stack_after_another_and_stops_at_the_first_failure(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = org(tmp_path / "kms")  # applied in order: east, other, west
    with hooked_clients(monkeypatch, deny_create_key_of("other")):
        code, out, err = kmsplan(
            capsys, endpoint, "apply", str(folder), "--auto-approve", "--fail-fast"
        )
    assert code == 1, out + err
    assert "  east: Apply complete: 1 added" in err
    assert "  other: Apply failed: 0 added" in err
    assert (
        "  west: not applied: stack other failed first (--fail-fast); nothing was changed "
        "in this stack"
    ) in err
    assert everything(endpoint) == (["east"], [], [])


def test_without_approval_no_stack_is_changed(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = org(tmp_path / "kms")
    code, out, err = kmsplan(capsys, endpoint, "apply", str(folder))
    assert code == 1, out + err
    assert "refusing to apply without approval: stdin is not a terminal" in err
    assert "Run: 3 stacks: 3 with changes" in out
    assert everything(endpoint) == ([], [], [])


def test_a_stack_whose_lock_another_run_holds_is_not_applied_and_the_others_are(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each stack's lock is taken before its live read and held until its last write; a
    stack another run holds fails on its own, and every lock this run took is released."""
    from lock_support import held_by_another_run, lock_objects, make_bucket

    url = make_bucket(endpoint)
    folder = tmp_path / "kms"
    folder.mkdir()
    write_manifest(folder / "east.yaml", "east", {"a": {}}, region="us-east-1", lock=url)
    write_manifest(folder / "west.yaml", "west", {"b": {}}, region="eu-west-1", lock=url)
    store, holder = held_by_another_run(endpoint, url, stack="east", region="us-east-1")
    code, out, err = kmsplan(capsys, endpoint, "apply", str(folder), "--auto-approve")
    assert code == 1, out + err
    assert "  east: not applied: error: " in err and f"lock id {holder.id}" in err
    assert "  west: Apply complete: 1 added" in err
    assert keys_in(endpoint, region="us-east-1") == []
    assert keys_in(endpoint, region="eu-west-1") == ["west"]
    assert len(lock_objects(endpoint)) == 1  # the other run's; west's was released
    assert store.delete(holder.id)
    assert lock_objects(endpoint) == []
