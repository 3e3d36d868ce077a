"""The manifest set `kmsplan import` writes, without AWS: it loads, it reads like a person
wrote it, and a plan of it against the keys it came from is nothing but TagResource."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from builders import NOW, desired_key, grant, live_key, live_state

from kmsplan.manifest import load, resolve_variables
from kmsplan.manifest.writer import imported_set, logical_name
from kmsplan.model import (
    TAG_KEY,
    TAG_PROTECTION,
    TAG_STACK,
    TAG_WINDOW,
    AdoptTarget,
    GrantConstraints,
    Key,
    KeyState,
    Rotation,
)
from kmsplan.plan.differ import diff
from kmsplan.plan.types import Action, GateOptions

ACCOUNT = "123456789012"
OWNERSHIP = (TAG_STACK, TAG_KEY, TAG_PROTECTION, TAG_WINDOW)


def unowned(name: str, key_id: str, **changes: object) -> Key:
    key = live_key(desired_key(name), key_id=key_id, omit_tags=OWNERSHIP)
    return dataclasses.replace(key, **changes)  # type: ignore[arg-type]


def write(tmp_path: Path, keys: list[Key]) -> Path:
    written = imported_set(keys, stack="legacy", account_id=ACCOUNT, region="us-east-1")
    for name, text in written.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


# Values YAML would misread unquoted (KMS's tag characters allow them all).
ODD_TAGS = ["", "yes", "123", "a: b", " padded ", "1.5", "null", "@home", "x=1"]


def test_what_import_writes_loads_and_plans_as_tag_resource_only(tmp_path: Path) -> None:
    keys = [
        unowned(
            "a",
            "11111111-1111-1111-1111-111111111111",
            aliases=("alias/team/orders", "alias/team/orders-old"),
            rotation=Rotation(enabled=True, period_days=180),
            description="Orders: primary # key, naïve\n'quoted' \"too\"",
            tags=tuple((f"t{i}", text) for i, text in enumerate(ODD_TAGS)),
            policy={
                "Statement": [
                    {
                        "Resource": ["*"],
                        "Action": ["kms:*"],
                        "Effect": "Allow",
                        "Principal": {"AWS": ACCOUNT},
                    }
                ],
                "Version": "2012-10-17",
            },
            grants=(
                grant(
                    "app",
                    retiring_principal=f"arn:aws:iam::{ACCOUNT}:role/ops",
                    constraints=GrantConstraints(encryption_context_equals=(("k", "v: w"),)),
                ),
            ),
            foreign_grants=(grant("ebs-1"),),
        ),
        unowned(
            "b",
            "22222222-2222-2222-2222-222222222222",
            enabled=False,
            state=KeyState.DISABLED,
            spec="HMAC_512",
            usage="GENERATE_VERIFY_MAC",
            rotation=Rotation(),
        ),
        unowned(
            "c",
            "33333333-3333-3333-3333-333333333333",
            spec="ECC_NIST_P384",
            usage="SIGN_VERIFY",
            rotation=Rotation(),
            description=" padded ",
        ),
    ]
    folder = write(tmp_path, keys)
    desired = resolve_variables(load([str(folder)]), account_id=ACCOUNT, region="us-east-1")
    assert [k.name for k in desired.keys] == [
        "22222222-2222-2222-2222-222222222222",
        "33333333-3333-3333-3333-333333333333",
        "team-orders",
    ]
    by_id = {k.key_id: k for k in keys}
    targets = tuple(
        AdoptTarget(
            name=d.name,
            ref=str(d.adopt),
            key_id=d.adopt,
            key=dataclasses.replace(by_id[d.adopt], name=d.name),
        )
        for d in desired.keys
    )
    aliases = {a: k.key_id for k in keys for a in k.aliases}
    live = dataclasses.replace(live_state(aliases=aliases), adoptions=targets)
    plan = diff(desired, live, GateOptions(), now=NOW)
    assert [(c.action, [call.operation for call in c.calls]) for c in plan.changes] == [
        (Action.ADOPT, ["TagResource"])
    ] * 3
    manifest = (folder / "legacy.yaml").read_text()
    assert "    rotation: {enabled: true, period_days: 180}\n" in manifest
    assert "    #   ebs-1 (" not in manifest  # no grant id on a test grant: name only
    assert "    #   ebs-1; grantee arn:aws:iam::123456789012:role/app; operations" in manifest
    assert json.loads((folder / "policies" / "team-orders.json").read_text()) == keys[0].policy


@pytest.mark.parametrize(
    ("aliases", "name"),
    [
        (("alias/legacy/orders",), "legacy-orders"),
        (("alias/a_b",), "a_b"),
        (("alias/-x-",), "x"),
        ((), "44444444-4444-4444-4444-444444444444"),
        (("alias/" + "x" * 100,), "x" * 64),
    ],
)
def test_a_logical_name_comes_from_the_first_alias_else_the_key_id(
    aliases: tuple[str, ...], name: str
) -> None:
    key = unowned("k", "44444444-4444-4444-4444-444444444444", aliases=aliases)
    assert logical_name(key) == name


def test_two_keys_whose_aliases_give_one_name_get_two_names() -> None:
    a = unowned("a", "55555555-5555-5555-5555-555555555555", aliases=("alias/x/y",))
    b = unowned("b", "66666666-6666-6666-6666-666666666666", aliases=("alias/x-y",))
    written = imported_set([a, b], stack="s", account_id=ACCOUNT, region="us-east-1")
    assert sorted(written.names.values()) == ["x-y", "x-y-2"]
