"""The pure helpers of the run layer and the plan command: account and Region guards,
principals to check, deletion candidates, colour and exit codes. The whole run is covered by
tests/integration."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from builders import ACCOUNT, NOW, desired_key, grant, live_key, live_state, stack, user_policy

from kmsplan.commands.plan import exit_code, use_color
from kmsplan.errors import RefusedError
from kmsplan.model import KeyState, Placement
from kmsplan.plan.differ import diff
from kmsplan.plan.types import GateOptions
from kmsplan.run import (
    Identity,
    Intent,
    check_account,
    check_region,
    check_region_name,
    deletion_candidates,
    principals_to_check,
)


def identity(account_id: str = ACCOUNT) -> Identity:
    return Identity(home=Placement(account_id=account_id, region="eu-west-1"), caller_arn="arn:x")


def test_account_guard_refuses_another_account_naming_both() -> None:
    with pytest.raises(RefusedError) as exc:
        check_account("111122223333", identity(), intent=Intent.PLAN)
    assert str(exc.value) == (
        f"the manifests declare account 111122223333 (account:), but the credentials are for "
        f"account {ACCOUNT} (arn:x); refusing to plan or apply against another account. "
        "Nothing was read or changed"
    )
    check_account(ACCOUNT, identity(), intent=Intent.PLAN)
    check_account(None, identity(), intent=Intent.PLAN)


def test_region_guard_refuses_a_region_flag_that_contradicts_the_manifest() -> None:
    pinned = stack(region="eu-west-1").region
    with pytest.raises(RefusedError) as exc:
        check_region(pinned, "us-east-1", intent=Intent.PLAN)
    assert str(exc.value) == (
        "the manifests declare region eu-west-1 (region:), but --region is us-east-1; "
        "refusing to plan or apply in another Region. Drop --region or fix the manifest. "
        "Nothing was read or changed"
    )
    check_region(pinned, "eu-west-1", intent=Intent.PLAN)
    check_region(pinned, None, intent=Intent.PLAN)
    check_region(stack().region, "us-east-1", intent=Intent.PLAN)


def test_principals_to_check_are_same_account_roles_and_users_only() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/app"
    user = f"arn:aws:iam::{ACCOUNT}:user/ops"
    desired = stack(
        desired_key("a", policy=user_policy(role)),
        desired_key(
            "b",
            grants=[
                grant("g1", grantee=user, retiring_principal=f"arn:aws:iam::{ACCOUNT}:root"),
                grant("g2", grantee="arn:aws:iam::999999999999:role/partner"),
            ],
        ),
    )
    assert principals_to_check(desired, ACCOUNT) == [role, user]


def test_deletion_candidates_are_undeclared_active_keys() -> None:
    live = live_state(
        live_key(desired_key("kept")),
        live_key(desired_key("gone")),
        live_key(desired_key("pending"), state=KeyState.PENDING_DELETION),
    )
    assert deletion_candidates(stack(desired_key("kept")), live) == ["gone"]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert use_color(no_color=False) is False
    monkeypatch.setattr("sys.stdout", _Tty())
    assert use_color(no_color=False) is True
    assert use_color(no_color=True) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(no_color=False) is False


def test_exit_codes() -> None:
    clean = diff(stack(), live_state(), GateOptions(), now=NOW)
    changes = diff(stack(desired_key("a")), live_state(), GateOptions(), now=NOW)
    blocked = diff(
        stack(desired_key("k")),
        live_state(live_key(desired_key("k")), live_key(desired_key("x"))),
        GateOptions(),
        now=NOW,
    )
    assert blocked.blocked
    assert [int(exit_code(p, detailed=True)) for p in (clean, changes, blocked)] == [0, 2, 3]
    assert [int(exit_code(p, detailed=False)) for p in (clean, changes, blocked)] == [0, 0, 0]


@pytest.mark.parametrize(
    "region",
    [
        "eu-west-1",
        "us-gov-west-1",
        "cn-north-1",
        "ap-southeast-4",
        "mars-1",
        "EU-WEST-1",
        "eu-west",
        "eu-west-1 ",
        "eu_west_1",
        "1-eu-west",
        "",
    ],
)
def test_region_flag_follows_the_rule_of_the_manifests_region(region: str, tmp_path: Path) -> None:
    from kmsplan.errors import KmsplanError, ValidationFailed
    from kmsplan.manifest import load

    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        json.dumps({"version": 1, "stack": "s", "region": region, "keys": {}}), encoding="utf-8"
    )
    try:
        load([str(manifest)])
        manifest_accepts = True
    except ValidationFailed:
        manifest_accepts = False
    try:
        check_region_name(region)
        flag_accepted = True
    except KmsplanError as exc:
        flag_accepted = False
        assert str(exc) == (
            f"invalid --region {region!r}: expected a Region name such as eu-west-1. "
            "Nothing was read or changed"
        )
    assert flag_accepted == manifest_accepts
    assert check_region_name(None) is None
