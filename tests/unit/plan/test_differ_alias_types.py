"""An alias moved to a key of another type: UpdateAlias refuses a new target that is not the
same type (symmetric, HMAC, asymmetric) and key usage as the old one (API_UpdateAlias), so
the differ deletes the alias and creates it again. Found by the convergence property test
(tests/integration/test_convergence_properties.py), which emulates that KMS rule."""

from __future__ import annotations

import pytest
from builders import NOW, desired_key, key_id_for, live_key, live_state, stack

from kmsplan.plan.differ import diff
from kmsplan.plan.types import Action, GateOptions, ref

SIGNING = {"spec": "RSA_2048", "usage": "SIGN_VERIFY"}
ALIAS = "alias/app/main"


def alias_calls(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, dict[str, object]]]:
    """The calls planned to move ALIAS from live key `before` (of type `old`) to a new key
    `after` (of type `new`)."""
    before = desired_key("before", **old)
    after = desired_key("after", aliases=[ALIAS], **new)
    live = live_state(live_key(before, protected=False), aliases={ALIAS: key_id_for("before")})
    plan = diff(stack(after), live, GateOptions(allow_delete=True, ignore_usage=True), now=NOW)
    (move,) = [c for c in plan.changes if c.address == f"alias.{ALIAS}"]
    assert move.action is Action.UPDATE and not move.blocked
    assert move.reason == "moves from key.before to key.after"
    return [(call.operation, dict(call.params)) for call in move.calls]


@pytest.mark.parametrize(
    ("old", "new"),
    [(SIGNING, {}), ({}, {"spec": "HMAC_256"}), ({"spec": "RSA_2048"}, SIGNING)],
    ids=["signing-to-symmetric", "symmetric-to-hmac", "same-spec-other-usage"],
)
def test_alias_moved_to_a_key_of_another_type_is_deleted_and_created_again(
    old: dict[str, str], new: dict[str, str]
) -> None:
    assert alias_calls(old, new) == [
        ("DeleteAlias", {"AliasName": ALIAS}),
        ("CreateAlias", {"AliasName": ALIAS, "TargetKeyId": ref("key.after")}),
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [({}, {}), (SIGNING, {"spec": "RSA_4096", "usage": "SIGN_VERIFY"})],
    ids=["symmetric", "asymmetric-signing"],
)
def test_alias_moved_to_a_key_of_the_same_type_is_updated_in_one_call(
    old: dict[str, str], new: dict[str, str]
) -> None:
    assert alias_calls(old, new) == [
        ("UpdateAlias", {"AliasName": ALIAS, "TargetKeyId": ref("key.after")}),
    ]
