"""`kmsplan apply` end to end against the moto server: converging, updating in place, and every
refusal — each refusal asserts its message, its exit code and that KMS did not change."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from apply_support import (
    ACCOUNT,
    ROOT,
    admin_policy,
    aliases,
    client,
    create_role,
    deny,
    grant_names,
    hooked_clients,
    key_id,
    key_last_used,
    kmsplan,
    stack_keys,
    write_manifest,
)

from kmsplan.commands import apply as apply_command

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# GetKeyLastUsage is asked with retries off (its failure is an answer): hook both clients.
CLIENTS = ("kms", "kms_no_retry")


def orders_keys(
    *, protected: bool = True, description: str = "Orders", grantee: str | None = None
) -> dict[str, Any]:
    orders: dict[str, Any] = {
        "description": description,
        "aliases": ["alias/shop/orders"],
        "rotation": {"enabled": True},
        "deletion": {"protected": protected, "window_days": 7},
        "tags": {"team": "shop"},
        "policy": admin_policy(),
    }
    if grantee:
        orders["grants"] = [
            {"name": "lambda", "grantee": grantee, "operations": ["Decrypt", "GenerateDataKey"]}
        ]
    return {"orders": orders, "audit": {"description": "Audit", "enabled": False}}


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    def set_terminal(is_terminal: bool) -> None:
        monkeypatch.setattr(apply_command, "stdin_is_terminal", lambda: is_terminal)

    return set_terminal


@pytest.fixture
def applied(tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]) -> Path:
    """The `shop` stack, applied: orders (protected) and audit (disabled)."""
    grantee = create_role(endpoint, "orders-lambda")
    manifest = write_manifest(tmp_path / "shop.yaml", "shop", orders_keys(grantee=grantee))
    code, _, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 0, err
    return manifest


def example_stacks() -> list[Path]:
    """Each example stack that may run against the emulator (not pinned to another account)."""
    from kmsplan.commands.demo import find_stacks
    from kmsplan.manifest import load

    if not EXAMPLES.is_dir():
        return []
    return [p for p in find_stacks(EXAMPLES) if load([str(p)]).account in (None, ACCOUNT)]


@pytest.mark.parametrize("example", example_stacks(), ids=lambda p: p.name)
def test_every_example_applies_and_then_plans_clean(
    example: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from kmsplan.local_kms import stand_in_principals
    from kmsplan.manifest import load

    # The roles the example names exist in a real account; the emulator starts empty.
    stand_in_principals(endpoint, [load([str(example)])])
    code, out, err = kmsplan(capsys, endpoint, "apply", str(example), "--auto-approve")
    assert code == 0, out + err
    assert "Apply complete:" in out
    code, out, err = kmsplan(capsys, endpoint, "plan", str(example), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (0, "No changes. KMS matches the manifests."), out


def test_apply_creates_everything_and_reports_each_change(
    applied: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = stack_keys(endpoint, "shop")
    assert sorted(keys) == ["audit", "orders"]
    orders = key_id(endpoint, "shop", "orders")
    assert aliases(endpoint)["alias/shop/orders"] == orders
    assert grant_names(endpoint, orders) == ["kmsplan/lambda"]
    assert keys["audit"][0]["KeyState"] == "Disabled"
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(applied), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (0, "No changes. KMS matches the manifests.")


def test_progress_and_summary(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", "shop", orders_keys())
    code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 0
    orders = key_id(endpoint, "shop", "orders")
    # Every line is led by [n/N]: n of the plan's N changes finished (keys, alias, disable).
    counted = [re.fullmatch(r"\[(\d)/4\] (.*)", line) for line in err.splitlines() if line]
    assert all(counted), err
    progress = [m.group(2) for m in counted if m]
    assert "key.orders: creating..." in progress
    assert f"key.orders: created [id={orders}]" in progress
    assert "alias.alias/shop/orders: created" in progress
    assert "key.audit.disable: disabled" in progress
    finished = [int(m.group(1)) for m in counted if m and not m.group(2).endswith("...")]
    assert finished == [1, 2, 3, 4]
    # key.audit.disable is part of creating key.audit: not a change of its own.
    assert out.splitlines()[-1] == "Apply complete: 3 added, 0 changed, 0 deleted."


def test_nothing_to_do_says_no_changes_and_exits_0(
    applied: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = kmsplan(capsys, endpoint, "apply", str(applied))
    assert (code, out.splitlines()[-1], err) == (0, "No changes. KMS matches the manifests.", "")


def test_in_place_updates_keep_the_key_id(
    applied: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {name: key_id(endpoint, "shop", name) for name in ("orders", "audit")}
    keys = orders_keys(description="Orders, v2")
    keys["orders"]["tags"] = {"team": "checkout"}
    keys["orders"]["rotation"] = {"enabled": False}
    keys["orders"]["policy"] = admin_policy(
        {
            "Sid": "ReadOnly",
            "Effect": "Allow",
            "Principal": {"AWS": ROOT},
            "Action": "kms:DescribeKey",
            "Resource": "*",
        }
    )
    keys["audit"]["enabled"] = True
    write_manifest(applied, "shop", keys)  # the grant is dropped too

    code, out, err = kmsplan(capsys, endpoint, "apply", str(applied), "--auto-approve")
    assert code == 0, out + err
    assert out.splitlines()[-1] == "Apply complete: 0 added, 2 changed, 1 deleted."
    assert {name: key_id(endpoint, "shop", name) for name in ("orders", "audit")} == before
    kms = client(endpoint)
    orders = before["orders"]
    assert kms.describe_key(KeyId=orders)["KeyMetadata"]["Description"] == "Orders, v2"
    assert kms.get_key_rotation_status(KeyId=orders)["KeyRotationEnabled"] is False
    policy = json.loads(kms.get_key_policy(KeyId=orders, PolicyName="default")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["AccountAdmin", "ReadOnly"]
    assert grant_names(endpoint, orders) == []
    assert kms.describe_key(KeyId=before["audit"])["KeyMetadata"]["KeyState"] == "Enabled"
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(applied), "--detailed-exitcode")
    assert code == 0, out


def test_a_failed_change_is_reported_and_the_next_apply_finishes_the_rest(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", "shop", orders_keys())
    with hooked_clients(monkeypatch, deny("CreateAlias")):
        code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 1
    assert (
        "alias.alias/shop/orders: FAILED at CreateAlias: AccessDeniedException: not allowed" in err
    )
    assert "Apply failed: 2 added, 0 changed, 0 deleted; these changes were not completed:" in err
    assert err.rstrip().endswith(
        "Re-run kmsplan apply to finish: every step is safe to repeat, and the next plan shows "
        "only what remains."
    )
    assert sorted(stack_keys(endpoint, "shop")) == ["audit", "orders"]
    assert "alias/shop/orders" not in aliases(endpoint)

    code, out, _ = kmsplan(capsys, endpoint, "plan", str(manifest))
    assert out.splitlines()[-1].startswith("Plan: 1 to add, 0 to change, 0 to delete, 0 blocked.")
    code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 0, out + err
    assert aliases(endpoint)["alias/shop/orders"] == key_id(endpoint, "shop", "orders")


# ---- the deletion gate ------------------------------------------------------------------


def only_audit(manifest: Path, *, protected_orders: bool) -> None:
    """Apply orders' protection setting, then drop orders from the manifest."""
    write_manifest(manifest, "shop", orders_keys(protected=protected_orders))


def test_removing_a_protected_key_is_refused_before_any_change(
    applied: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = key_id(endpoint, "shop", "orders")
    write_manifest(applied, "shop", {"audit": orders_keys()["audit"]})
    flags = ("--auto-approve", "--allow-delete", "--ignore-usage")
    code, _, err = kmsplan(capsys, endpoint, "apply", str(applied), *flags)
    assert code == 1
    assert err.startswith(
        "error: refusing to apply: 1 change(s) blocked by the safety gate; nothing was changed:"
    )
    assert "key.orders: " in err and "deletion-protection" in err
    assert "to unblock: " in err
    assert client(endpoint).describe_key(KeyId=orders)["KeyMetadata"]["KeyState"] == "Enabled"
    assert aliases(endpoint)["alias/shop/orders"] == orders


@pytest.fixture
def unprotected(applied: Path, endpoint: str, capsys: pytest.CaptureFixture[str]) -> Path:
    """orders' protection turned off and applied, then orders removed from the manifest."""
    write_manifest(applied, "shop", orders_keys(protected=False))
    code, _, err = kmsplan(capsys, endpoint, "apply", str(applied), "--auto-approve")
    assert code == 0, err
    write_manifest(applied, "shop", {"audit": orders_keys()["audit"]})
    return applied


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ((), "--allow-delete"),
        # moto has no GetKeyLastUsage: usage is unknown, which blocks without --ignore-usage.
        (("--allow-delete",), "--ignore-usage"),
    ],
    ids=["without-allow-delete", "usage-unknown"],
)
def test_unprotected_key_deletion_still_needs_every_other_condition(
    unprotected: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    flags: tuple[str, ...],
    reason: str,
) -> None:
    orders = key_id(endpoint, "shop", "orders")
    code, _, err = kmsplan(capsys, endpoint, "apply", str(unprotected), "--auto-approve", *flags)
    assert code == 1
    assert "error: refusing to apply:" in err and "key.orders" in err and reason in err
    assert client(endpoint).describe_key(KeyId=orders)["KeyMetadata"]["KeyState"] == "Enabled"


def test_deletion_happens_only_when_every_condition_holds(
    unprotected: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = key_id(endpoint, "shop", "orders")
    code, out, err = kmsplan(
        capsys,
        endpoint,
        "apply",
        str(unprotected),
        "--auto-approve",
        "--allow-delete",
        "--ignore-usage",
    )
    assert code == 0, out + err
    metadata = client(endpoint).describe_key(KeyId=orders)["KeyMetadata"]
    assert metadata["KeyState"] == "PendingDeletion"
    assert "alias/shop/orders" not in aliases(endpoint)
    assert "deleted" in out.splitlines()[-1]
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(unprotected), "--detailed-exitcode")
    assert code == 0, out

    # Declaring the key again restores it: same key, deletion cancelled, enabled again.
    write_manifest(unprotected, "shop", orders_keys(protected=False))
    code, out, err = kmsplan(capsys, endpoint, "apply", str(unprotected), "--auto-approve")
    assert code == 0, out + err
    assert "1 restored" in out.splitlines()[-1]
    assert key_id(endpoint, "shop", "orders") == orders
    assert client(endpoint).describe_key(KeyId=orders)["KeyMetadata"]["KeyState"] == "Enabled"
    assert aliases(endpoint)["alias/shop/orders"] == orders
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(unprotected), "--detailed-exitcode")
    assert code == 0, out


def test_a_key_used_recently_is_not_deleted_even_with_allow_delete(
    unprotected: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orders = key_id(endpoint, "shop", "orders")
    recently = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()
    with hooked_clients(monkeypatch, key_last_used(recently), client_names=CLIENTS):
        code, _, err = kmsplan(
            capsys, endpoint, "apply", str(unprotected), "--auto-approve", "--allow-delete"
        )
    assert code == 1
    assert "error: refusing to apply:" in err and "key.orders" in err and "--unused-for" in err
    assert client(endpoint).describe_key(KeyId=orders)["KeyMetadata"]["KeyState"] == "Enabled"


def test_a_key_never_used_is_deleted_without_ignore_usage(
    unprotected: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orders = key_id(endpoint, "shop", "orders")
    with hooked_clients(monkeypatch, key_last_used(None), client_names=CLIENTS):
        code, out, err = kmsplan(
            capsys, endpoint, "apply", str(unprotected), "--auto-approve", "--allow-delete"
        )
    assert code == 0, out + err
    assert client(endpoint).describe_key(KeyId=orders)["KeyMetadata"]["KeyState"] == (
        "PendingDeletion"
    )


def test_an_empty_manifest_is_refused_as_mass_deletion(
    unprotected: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both keys unprotected, every per-key condition met: only the mass-deletion guard is left.
    keys = orders_keys(protected=False)
    keys["audit"]["deletion"] = {"protected": False}
    write_manifest(unprotected, "shop", keys)
    assert kmsplan(capsys, endpoint, "apply", str(unprotected), "--auto-approve")[0] == 0
    write_manifest(unprotected, "shop", {})
    code, _, err = kmsplan(
        capsys,
        endpoint,
        "apply",
        str(unprotected),
        "--auto-approve",
        "--allow-delete",
        "--ignore-usage",
    )
    assert code == 1
    assert "error: refusing to apply:" in err and "--allow-delete-all" in err
    states = {n: m[0]["KeyState"] for n, m in stack_keys(endpoint, "shop").items()}
    assert states == {"orders": "Enabled", "audit": "Disabled"}


def test_alias_takeover_from_a_key_outside_the_stack_is_refused(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kms = client(endpoint)
    foreign = kms.create_key(Description="not ours")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/shop/orders", TargetKeyId=foreign)
    manifest = write_manifest(tmp_path / "m.yaml", "shop", orders_keys())
    code, _, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 1
    assert "error: refusing to apply:" in err and "alias/shop/orders" in err
    assert "--allow-alias-takeover" in err
    assert aliases(endpoint)["alias/shop/orders"] == foreign
    assert stack_keys(endpoint, "shop") == {}


def test_a_policy_that_locks_everyone_out_is_refused_before_any_write(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reader = create_role(endpoint, "reader")
    lockout = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UseOnly",
                "Effect": "Allow",
                "Principal": {"AWS": reader},
                "Action": ["kms:Decrypt"],
                "Resource": "*",
            }
        ],
    }
    keys = orders_keys()
    keys["orders"]["policy"] = lockout
    manifest = write_manifest(tmp_path / "m.yaml", "shop", keys)
    code, _, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 1
    assert "error: refusing to apply:" in err and "key.orders" in err and "PutKeyPolicy" in err
    assert stack_keys(endpoint, "shop") == {}


def test_a_run_against_another_account_is_refused(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", "shop", orders_keys(), account="999999999999")
    code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 1
    assert err.startswith(
        "error: the manifests declare account 999999999999 (account:), but the credentials are "
        f"for account {ACCOUNT}"
    )
    assert out == ""
    assert stack_keys(endpoint, "shop") == {}


# ---- approval -----------------------------------------------------------------------------


def test_without_a_terminal_and_without_auto_approve_nothing_is_applied(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    terminal: Callable[[bool], None],
) -> None:
    terminal(False)
    manifest = write_manifest(tmp_path / "m.yaml", "shop", orders_keys())
    code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest))
    assert code == 1
    assert "Plan: 3 to add" in out
    assert err == (
        "error: refusing to apply without approval: stdin is not a terminal, so nobody can "
        "answer 'yes'; review the plan and re-run with --auto-approve. Nothing was changed\n"
    )
    assert stack_keys(endpoint, "shop") == {}


@pytest.mark.parametrize(("answer", "applied_keys"), [("yes", ["audit", "orders"]), ("y", [])])
def test_only_yes_approves(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    terminal: Callable[[bool], None],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    applied_keys: list[str],
) -> None:
    terminal(True)
    monkeypatch.setattr("click.termui.visible_prompt_func", lambda _prompt: answer)
    manifest = write_manifest(tmp_path / "m.yaml", "shop", orders_keys())
    code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest))
    assert "Only 'yes' will be accepted." in out
    assert sorted(stack_keys(endpoint, "shop")) == applied_keys
    if applied_keys:
        assert code == 0
    else:
        assert (code, err) == (
            1,
            "error: apply cancelled: the answer was not 'yes'. Nothing was changed\n",
        )


# ---- saved plans --------------------------------------------------------------------------


def test_a_saved_plan_is_applied_when_live_kms_still_matches(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", "shop", orders_keys())
    saved = tmp_path / "plan.json"
    assert kmsplan(capsys, endpoint, "plan", str(manifest), "--out", str(saved))[0] == 0
    code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")
    assert code == 0, out + err
    assert sorted(stack_keys(endpoint, "shop")) == ["audit", "orders"]
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(manifest), "--detailed-exitcode")
    assert code == 0, out


def test_a_stale_saved_plan_is_refused_naming_what_changed(
    applied: Path, endpoint: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_manifest(applied, "shop", orders_keys(description="Orders, v2"))
    saved = tmp_path / "plan.json"
    assert kmsplan(capsys, endpoint, "plan", str(applied), "--out", str(saved))[0] == 0
    orders = key_id(endpoint, "shop", "orders")
    client(endpoint).tag_resource(KeyId=orders, Tags=[{"TagKey": "team", "TagValue": "other"}])

    code, _, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")
    assert code == 1
    assert err == (
        f"error: stale plan: live KMS changed since {saved} was saved (key.orders.tags); "
        "run kmsplan plan again. Nothing was changed\n"
    )
    assert client(endpoint).describe_key(KeyId=orders)["KeyMetadata"]["Description"] == "Orders"


def test_a_saved_plan_of_an_unknown_format_version_is_refused(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", "shop", orders_keys())
    saved = tmp_path / "plan.json"
    assert kmsplan(capsys, endpoint, "plan", str(manifest), "--out", str(saved))[0] == 0
    document = json.loads(saved.read_text())
    document["format_version"] = 99
    saved.write_text(json.dumps(document))
    code, _, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")
    assert code == 1
    assert err.startswith(f"error: {saved}: ") and "99" in err
    assert stack_keys(endpoint, "shop") == {}


def test_audit_log_gets_one_line_per_call(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", "shop", orders_keys())
    log = tmp_path / "audit.jsonl"
    log.write_text('{"earlier": "line"}\n')
    code, _, _ = kmsplan(
        capsys, endpoint, "apply", str(manifest), "--auto-approve", "--log", str(log)
    )
    assert code == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0] == {"earlier": "line"}
    operations = sorted(e["operation"] for e in lines[1:])
    assert operations == sorted(
        ["CreateKey", "EnableKeyRotation", "CreateAlias", "CreateKey", "DisableKey"]
    )
    assert all(e["outcome"] == "ok" and e["request_id"] for e in lines[1:])
    assert "AccountAdmin" not in log.read_text()
