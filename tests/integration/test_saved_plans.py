"""`apply --plan FILE` against the moto server when the file was edited: a plan whose gate
verdicts and flags were set to "allowed" and whose checksum was computed again (as anyone
holding the file can) still cannot schedule a deletion the gate blocks, nor touch a key outside
the stack; the gate is run again with apply's own flags against live KMS read again. Each
refusal asserts its message, its exit code and that KMS did not change."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apply_support import admin_policy, aliases, client, key_id, kmsplan, write_manifest

from kmsplan.plan import planfile

pytestmark = pytest.mark.integration

DELETE_FLAGS = ("--allow-delete", "--ignore-usage")


def keys(*, with_orders: bool = True) -> dict[str, Any]:
    declared: dict[str, Any] = {
        "audit": {"description": "Audit", "policy": admin_policy()},
    }
    if with_orders:
        declared["orders"] = {
            "description": "Orders",
            "aliases": ["alias/shop/orders"],
            "deletion": {"protected": False, "window_days": 7},
            "policy": admin_policy(),
        }
    return declared


class Shop:
    """The applied `shop` stack (orders unprotected, audit protected), a key outside it with
    an alias, and a plan saved after orders was removed from the manifest: its deletion is
    blocked (no --allow-delete at plan time)."""

    def __init__(self, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
        self.endpoint, self.capsys = endpoint, capsys
        manifest = write_manifest(tmp_path / "shop.yaml", "shop", keys())
        code, _, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
        assert code == 0, err
        kms = client(endpoint)
        self.foreign = kms.create_key(Description="someone else's")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/foreign", TargetKeyId=self.foreign)
        self.orders = key_id(endpoint, "shop", "orders")
        self.audit = key_id(endpoint, "shop", "audit")
        write_manifest(manifest, "shop", keys(with_orders=False))
        self.saved = tmp_path / "plan.json"
        code, out, err = kmsplan(capsys, endpoint, "plan", str(manifest), "--out", str(self.saved))
        assert code == 0, err
        assert "blocked" in out
        self.before = self.kms_state()

    def kms_state(self) -> dict[str, Any]:
        kms = client(self.endpoint)
        keys = {}
        for key in (self.orders, self.audit, self.foreign):
            metadata = kms.describe_key(KeyId=key)["KeyMetadata"]
            keys[key] = (
                metadata["KeyState"],
                metadata.get("Description"),
                kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"],
            )
        return {"keys": keys, "aliases": aliases(self.endpoint)}

    def document(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.saved.read_text(encoding="utf-8"))
        return loaded

    def write(self, document: dict[str, Any], *, checksum: bool = True) -> None:
        if checksum:
            document["checksum"] = planfile.checksum(document)
        self.saved.write_text(json.dumps(document, indent=2), encoding="utf-8")

    def apply(self, *flags: str) -> tuple[int, str, str]:
        return kmsplan(
            self.capsys, self.endpoint, "apply", "--plan", str(self.saved), "--auto-approve", *flags
        )


@pytest.fixture
def shop(endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Shop:
    return Shop(endpoint, tmp_path, capsys)


def allow_everything(document: dict[str, Any]) -> None:
    for change in document["changes"]:
        change["gate"] = {"status": "allowed", "blocks": []}
    gate = document["gate"]
    for flag in gate:
        gate[flag] = 0 if flag == "unused_for_days" else True
    document["summary"]["blocked"] = 0


def test_verdicts_and_flags_set_to_allowed_in_the_file_do_not_unblock_a_deletion(
    shop: Shop,
) -> None:
    document = shop.document()
    allow_everything(document)
    shop.write(document, checksum=False)
    code, out, err = shop.apply()
    assert (code, out) == (1, "")
    assert err == (
        f"error: {shop.saved}: plan document: the content does not match its checksum: the "
        "plan was changed after kmsplan plan --out saved it; plan again. Nothing was changed\n"
    )
    assert shop.kms_state() == shop.before

    # With the checksum computed again, the gate run by apply still blocks the deletion.
    shop.write(document)
    code, out, err = shop.apply()
    assert code == 1
    assert err.startswith("error: refusing to apply: 1 change(s) blocked by the safety gate;")
    assert (
        "key.orders: scheduling a key deletion needs --allow-delete (to unblock: re-run "
        "with --allow-delete)" in err
    )
    assert "1 blocked" in out
    assert shop.kms_state() == shop.before


def test_a_saved_deletion_needs_the_gate_flags_on_the_apply_command_line(shop: Shop) -> None:
    code, _, err = shop.apply()
    assert code == 1 and "needs --allow-delete" in err
    assert shop.kms_state() == shop.before
    code, out, err = shop.apply(*DELETE_FLAGS)
    assert code == 0, out + err
    metadata = client(shop.endpoint).describe_key(KeyId=shop.orders)["KeyMetadata"]
    assert metadata["KeyState"] == "PendingDeletion"
    assert "alias/shop/orders" not in aliases(shop.endpoint)
    assert client(shop.endpoint).describe_key(KeyId=shop.audit)["KeyMetadata"]["KeyState"] == (
        "Enabled"
    )


def _schedule_call(document: dict[str, Any]) -> dict[str, Any]:
    return next(
        call
        for change in document["changes"]
        for call in change["calls"]
        if call["operation"] == "ScheduleKeyDeletion"
    )


def _extra_change(
    shop: Shop, call: dict[str, Any], *, address: str = "key.audit", resource: str = "key"
) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["changes"].append(
            {
                "address": address,
                "resource": resource,
                "action": "update",
                "key": "audit",
                "destructive": False,
                "gate": {"status": "allowed", "blocks": []},
                "reason": "",
                "before": None,
                "after": None,
                "attributes": [],
                "calls": [call],
                "depends_on": [],
                "policy_diff": None,
            }
        )

    return edit


LOCKOUT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            }
        ],
    }
)


def _cases(shop: Shop) -> dict[str, tuple[Callable[[dict[str, Any]], None], str]]:
    def key_id_to(target: str) -> Callable[[dict[str, Any]], None]:
        return lambda d: _schedule_call(d)["params"].update(KeyId=target)

    return {
        "deletion-moved-to-a-protected-key": (
            key_id_to(shop.audit),
            "stale plan: live KMS changed since",
        ),
        "deletion-moved-outside-the-stack": (
            key_id_to(shop.foreign),
            f"KeyId is key '{shop.foreign}', which is not a key of stack shop",
        ),
        "window-shortened": (
            lambda d: _schedule_call(d)["params"].update(PendingWindowInDays=1),
            "pending window 1 days is outside 7-30",
        ),
        "lockout-policy-added": (
            _extra_change(
                shop,
                {
                    "operation": "PutKeyPolicy",
                    "params": {"KeyId": shop.audit, "PolicyName": "default", "Policy": LOCKOUT},
                },
            ),
            "key.audit: PutKeyPolicy:",
        ),
        "lockout-check-bypassed": (
            _extra_change(
                shop,
                {
                    "operation": "PutKeyPolicy",
                    "params": {
                        "KeyId": shop.audit,
                        "PolicyName": "default",
                        "Policy": LOCKOUT,
                        "BypassPolicyLockoutSafetyCheck": True,
                    },
                },
            ),
            "BypassPolicyLockoutSafetyCheck without --bypass-policy-lockout-safety-check",
        ),
        "foreign-alias-deleted": (
            _extra_change(
                shop,
                {"operation": "DeleteAlias", "params": {"AliasName": "alias/foreign"}},
                address="alias.alias/foreign",
                resource="alias",
            ),
            "which is not a key of stack shop, and the change does not move it here",
        ),
        "foreign-key-disabled": (
            _extra_change(shop, {"operation": "DisableKey", "params": {"KeyId": shop.foreign}}),
            "which is not a key of stack shop",
        ),
        "fingerprint-changed": (
            lambda d: d["fingerprint"].update({"key.orders.tags": "0" * 64}),
            "stale plan: live KMS changed since",
        ),
        "usage-left-out": (
            lambda d: [
                d["fingerprint"].pop(a) for a in list(d["fingerprint"]) if a.startswith("usage.")
            ],
            "stale plan: live KMS changed since",
        ),
        "other-stack": (lambda d: d.update(stack="other"), "stale plan: live KMS changed since"),
        "other-account": (
            lambda d: d.update(account_id="999999999999"),
            "the saved plan is for account 999999999999, but the credentials are for account "
            "123456789012",
        ),
        "other-region": (
            lambda d: d.update(region="eu-west-1"),
            "stale plan: live KMS changed since",
        ),
    }


CASES = [
    "deletion-moved-to-a-protected-key",
    "deletion-moved-outside-the-stack",
    "window-shortened",
    "lockout-policy-added",
    "lockout-check-bypassed",
    "foreign-alias-deleted",
    "foreign-key-disabled",
    "fingerprint-changed",
    "usage-left-out",
    "other-stack",
    "other-account",
    "other-region",
]


@pytest.mark.parametrize("case", CASES)
def test_an_edited_plan_with_a_recomputed_checksum_is_refused_with_every_flag(
    shop: Shop, case: str
) -> None:
    edit, expected = _cases(shop)[case]
    document = shop.document()
    allow_everything(document)
    edit(document)
    shop.write(document)
    code, _, err = shop.apply(*DELETE_FLAGS, "--allow-alias-takeover")
    assert code == 1
    assert expected in err, err
    assert shop.kms_state() == shop.before
