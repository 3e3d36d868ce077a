"""Saved plans: an exact JSON round trip, strict versioning, saved runs of several stacks, and
fingerprints that name every live object that changed since the plan was made."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from builders import (
    ACCOUNT,
    NOW,
    converged,
    desired_key,
    grant,
    key_id_for,
    live_key,
    live_state,
    never_used,
    stack,
    user_policy,
)

from kmsplan.errors import KmsplanError
from kmsplan.model import AliasTarget, KeyState, Role, Rotation
from kmsplan.plan import planfile
from kmsplan.plan.differ import diff
from kmsplan.plan.serialize import PlanFormatError
from kmsplan.plan.types import GateOptions, Plan
from kmsplan.render.json import render_run
from kmsplan.run.stacks import StackOutcome

ORDERS = desired_key(
    "orders",
    aliases=["alias/payments/orders"],
    rotation=Rotation(enabled=True, period_days=365),
    policy=user_policy(f"arn:aws:iam::{ACCOUNT}:role/app"),
    grants=[grant("lambda")],
    tags={"team": "payments"},
)


def rich_plan() -> Plan:
    """A plan with every kind of change, blocks, notes and cost."""
    new = desired_key(
        "invoices",
        aliases=["alias/payments/orders"],
        policy=user_policy(f"arn:aws:iam::{ACCOUNT}:role/billing"),
        grants=[grant("g")],
    )
    changed = dataclasses.replace(
        ORDERS,
        aliases=(),
        description="changed",
        grants=(grant("lambda", operations=("Decrypt",)),),
    )
    live = dataclasses.replace(
        live_state(live_key(ORDERS), live_key(desired_key("legacy"), protected=False)),
        last_usage={"legacy": never_used()},
    )
    plan = diff(stack(new, changed), live, GateOptions(), now=NOW)
    return dataclasses.replace(
        plan, fingerprint=planfile.fingerprint(live), kmsplan_version="0.1.0"
    )


def test_saved_plan_round_trips_exactly() -> None:
    plan = rich_plan()
    assert {c.action.value for c in plan.changes} == {"create", "update", "delete"}
    assert plan.blocked  # deleting 'legacy' needs --allow-delete
    text = planfile.dumps(plan)
    assert json.loads(text)["format_version"] == 2
    assert planfile.loads(text) == plan


def test_saved_plan_validates_against_the_published_schema() -> None:
    import jsonschema

    schema_path = Path(__file__).resolve().parents[3] / "schemas" / "plan.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(json.loads(planfile.dumps(rich_plan())))


def test_saved_plan_file_round_trips(tmp_path: Path) -> None:
    plan = rich_plan()
    path = tmp_path / "plan.json"
    planfile.write(path, plan)
    assert planfile.read(path) == plan


def test_unknown_format_version_is_refused() -> None:
    document = json.loads(planfile.dumps(rich_plan()))
    document["format_version"] = 99
    with pytest.raises(KmsplanError) as exc:
        planfile.loads(json.dumps(document))
    assert str(exc.value) == (
        "plan document: unsupported format_version 99 (this kmsplan reads format_version 2); "
        "run kmsplan plan again"
    )


def test_a_plan_saved_by_an_older_kmsplan_is_refused_with_the_way_out(tmp_path: Path) -> None:
    # format_version 1 had no role: a plan saved then cannot say which role to assume.
    document = json.loads(planfile.dumps(rich_plan()))
    del document["role"], document["checksum"]
    document["format_version"] = 1
    document["checksum"] = planfile.checksum(document)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(KmsplanError) as exc:
        planfile.read(path)
    assert str(exc.value) == (
        f"{path}: plan document: unsupported format_version 1 (this kmsplan reads "
        "format_version 2); run kmsplan plan again"
    )


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(KmsplanError) as exc:
        planfile.loads("not a plan")
    assert str(exc.value).startswith("plan document: not JSON: ")


def test_unreadable_plan_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KmsplanError) as exc:
        planfile.read(tmp_path / "missing.json")
    assert str(exc.value).startswith(f"cannot read the plan {tmp_path / 'missing.json'}: ")


# ---- saved runs of several stacks ---------------------------------------------------------------


def second_plan() -> Plan:
    """Another stack's plan, in another account, with a role."""
    return dataclasses.replace(
        diff(
            stack(desired_key("a"), name="billing"), live_state(stack_name="billing"), GateOptions()
        ),
        account_id="222233334444",
        role=Role(arn="arn:aws:iam::222233334444:role/x", external_id="ext"),
        fingerprint={"account": "0" * 64},
        kmsplan_version="0.1.0",
    )


def run_document(*plans: Plan) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(planfile.dumps_run(plans))
    return loaded


def refusal(document: dict[str, Any], *, checksum: bool = True) -> str:
    """The refusal of `document` saved with its checksum computed again (as anyone can)."""
    if checksum:
        document["checksum"] = planfile.checksum(document)
    with pytest.raises(PlanFormatError) as exc:
        planfile.loads_saved(json.dumps(document))
    return str(exc.value)


def test_a_saved_run_reads_back_one_plan_per_stack_in_order(tmp_path: Path) -> None:
    plans = (rich_plan(), second_plan())
    path = tmp_path / "run.json"
    planfile.write_run(path, plans)
    assert planfile.read_saved(path) == plans
    assert planfile.read_saved(path)[1].role == plans[1].role
    single = tmp_path / "one.json"
    planfile.write(single, plans[0])
    assert planfile.read_saved(single) == (plans[0],)


def test_a_saved_run_is_the_run_document_and_one_checksum_over_all_of_it() -> None:
    plans = (rich_plan(), second_plan())
    document = run_document(*plans)
    checksum = document.pop("checksum")
    outcomes = [StackOutcome(stack=stack(name=p.stack), plan=p) for p in plans]
    # What `plan --format json` prints for the run, plus the checksum of all of it.
    assert document == json.loads(render_run(outcomes))
    assert checksum == planfile.checksum(document)
    assert all("checksum" not in s["plan"] for s in document["stacks"])
    assert document["summary"] == {
        "stacks": 2,
        "with_changes": 1,
        "blocked": 1,
        "failed": 0,
        "without_changes": 0,
    }


def test_a_saved_run_validates_against_the_published_schema() -> None:
    import jsonschema

    schema_path = Path(__file__).resolve().parents[3] / "schemas" / "plan.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(run_document(rich_plan(), second_plan()))


def test_a_saved_run_edited_anywhere_is_refused() -> None:
    message = (
        "plan document: the content does not match its checksum: the plan was changed after "
        "kmsplan plan --out saved it; plan again. Nothing was changed"
    )
    edits = [
        lambda d: d["stacks"].pop(),  # a stack dropped
        lambda d: d["stacks"].reverse(),
        lambda d: d["stacks"][0]["plan"]["changes"].pop(),
        lambda d: d["stacks"][1].update(account="111122223333"),  # derived, still covered
        lambda d: d["summary"].update(blocked=0),
        lambda d: d["stacks"][1]["plan"]["role"].update(arn="arn:aws:iam::333344445555:role/y"),
    ]
    for edit in edits:
        document = run_document(rich_plan(), second_plan())
        edit(document)
        assert refusal(document, checksum=False) == message


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["stacks"][1].update(plan=None, status="failed", error="error: x"),
            "plan document: stacks[1].plan: stack 'billing' has no plan (a run in which a stack "
            "failed is never saved)",
        ),
        (
            lambda d: d["stacks"].append(d["stacks"][0]),
            "plan document: stacks[2].plan.stack: a second plan of stack 'payments'",
        ),
        (
            lambda d: d["stacks"][0]["plan"].update(format_version=1),
            "plan document: stacks[0].plan.format_version: expected 2",
        ),
        (
            lambda d: d["stacks"][0]["plan"]["changes"][0].update(action="replace"),
            "plan document: stacks[0].plan.changes[0].action: expected one of create, update, "
            "delete, restore, adopt, release",
        ),
        (
            lambda d: d["stacks"][1]["plan"]["fingerprint"].update(account=1),
            "plan document: stacks[1].plan.fingerprint.account: expected a string",
        ),
        (lambda d: d.update(kind="runs"), 'plan document: kind: expected "run"'),
        (lambda d: d.update(stacks=[]), "plan document: stacks: expected at least one stack"),
        (lambda d: d.update(stacks={}), "plan document: stacks: expected an array"),
        (
            lambda d: d.update(format_version=1),
            "plan document: unsupported format_version 1 (this kmsplan reads format_version 2); "
            "run kmsplan plan again",
        ),
    ],
    ids=[
        "failed-stack",
        "two-plans-of-one-stack",
        "nested-version",
        "nested-member",
        "nested-fingerprint",
        "kind",
        "no-stacks",
        "stacks-not-array",
        "version-1",
    ],
)
def test_a_malformed_saved_run_is_refused_with_the_member_named(edit: Any, message: str) -> None:
    document = run_document(rich_plan(), second_plan())
    del document["checksum"]
    edit(document)
    assert refusal(document) == message


def test_the_saved_plan_of_one_stack_is_not_read_from_a_run_of_several(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    planfile.write_run(path, (rich_plan(), second_plan()))
    with pytest.raises(PlanFormatError) as exc:
        planfile.read(path)
    assert str(exc.value) == (
        f"{path}: plan document: a saved run of 2 stacks (payments, billing), not the plan of "
        "one stack"
    )
    planfile.write_run(path, (second_plan(),))  # a run of one stack is that stack's plan
    assert planfile.read(path) == second_plan()


def test_a_run_without_stacks_is_not_saved(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        planfile.write_run(tmp_path / "run.json", ())
    assert not (tmp_path / "run.json").exists()


# ---- fingerprints -----------------------------------------------------------------------------


def live_orders(**changes: object) -> object:
    return live_key(ORDERS, **changes)  # type: ignore[arg-type]


def test_fingerprint_names_every_live_object_read() -> None:
    live = dataclasses.replace(
        converged(stack(ORDERS)),
        last_usage={"orders": never_used()},
        principals={f"arn:aws:iam::{ACCOUNT}:role/app": True},
    )
    assert sorted(planfile.fingerprint(live)) == [
        "account",
        "alias.alias/payments/orders",
        "discovered",
        "key.orders.grants",
        "key.orders.metadata",
        "key.orders.policy",
        "key.orders.rotation",
        "key.orders.tags",
        f"principal.arn:aws:iam::{ACCOUNT}:role/app",
        "usage.orders",
    ]
    assert all(len(v) == 64 for v in planfile.fingerprint(live).values())


def test_unchanged_live_state_is_not_stale() -> None:
    a = planfile.fingerprint(converged(stack(ORDERS)))
    b = planfile.fingerprint(converged(stack(ORDERS)))
    assert planfile.stale_objects(a, b) == []


@pytest.mark.parametrize(
    ("drift", "stale"),
    [
        ({"omit_tags": ["team"]}, ["key.orders.tags"]),
        ({"description": "edited"}, ["key.orders.metadata"]),
        ({"policy": user_policy(f"arn:aws:iam::{ACCOUNT}:role/other")}, ["key.orders.policy"]),
        ({"rotation": Rotation(enabled=False)}, ["key.orders.rotation"]),
        ({"grants": ()}, ["key.orders.grants"]),
        ({"state": KeyState.PENDING_DELETION}, ["key.orders.metadata"]),
    ],
)
def test_each_kind_of_out_of_band_change_is_named(
    drift: dict[str, object], stale: list[str]
) -> None:
    saved = planfile.fingerprint(live_state(live_key(ORDERS)))
    current = planfile.fingerprint(live_state(live_key(ORDERS, **drift)))  # type: ignore[arg-type]
    assert planfile.stale_objects(saved, current) == stale


def test_moved_alias_and_new_key_are_named() -> None:
    saved_live = live_state(live_key(ORDERS))
    other = live_key(desired_key("other"))
    current_live = dataclasses.replace(
        live_state(live_key(ORDERS), other),
        aliases=(AliasTarget(name="alias/payments/orders", target_key_id=key_id_for("other")),),
    )
    stale = planfile.stale_objects(
        planfile.fingerprint(saved_live), planfile.fingerprint(current_live)
    )
    assert stale == [
        "alias.alias/payments/orders",
        "discovered",
        "key.other.grants",
        "key.other.metadata",
        "key.other.policy",
        "key.other.rotation",
        "key.other.tags",
    ]
