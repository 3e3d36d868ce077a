"""The plan's public JSON form: exact round trip, schema validity, strict reading, summary."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from golden.sample_plan import build_sample_plan
from hypothesis import given, settings
from hypothesis import strategies as st

from kmsplan.errors import KmsplanError
from kmsplan.model import Placement, Role
from kmsplan.plan.serialize import (
    NO_CHANGES,
    PlanFormatError,
    format_usd,
    plan_from_dict,
    plan_to_dict,
    summary_line,
)
from kmsplan.plan.types import (
    FORMAT_VERSION,
    Action,
    ApiCall,
    AttributeChange,
    Change,
    CostLine,
    GateBlock,
    GateOptions,
    Plan,
    Resource,
    ref,
)

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "schemas" / "plan.schema.json").read_text("utf-8")
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _plan(*changes: Change, cost: tuple[CostLine, ...] = ()) -> Plan:
    return Plan(
        stack="s", account_id="111122223333", region="eu-west-1", changes=changes, cost=cost
    )


def _change(action: Action, name: str = "k", *, blocked: bool = False) -> Change:
    blocks = (GateBlock(rule="allow-delete", reason="r", unblock="u"),) if blocked else ()
    return Change(
        address=f"key.{name}", resource=Resource.KEY, action=action, key=name, blocked=blocks
    )


# ---- round trip -------------------------------------------------------------------------------


def test_sample_plan_round_trips_exactly_through_dict_and_json_text() -> None:
    plan = build_sample_plan()
    assert plan_from_dict(plan_to_dict(plan)) == plan
    assert plan_from_dict(json.loads(json.dumps(plan_to_dict(plan)))) == plan


def test_round_trip_keeps_what_plan_equality_does_not_see_in_a_hash() -> None:
    # before/after/params are hash=False but still compared: a lost param must fail the test.
    plan = build_sample_plan()
    changed = dataclasses.replace(
        plan,
        changes=(
            dataclasses.replace(
                plan.changes[0], calls=(ApiCall(operation="CreateKey", params={"Policy": "x"}),)
            ),
            *plan.changes[1:],
        ),
    )
    assert plan_from_dict(plan_to_dict(changed)) != plan
    assert plan_from_dict(plan_to_dict(changed)) == changed


def test_document_starts_with_format_version_and_has_every_documented_member() -> None:
    document = plan_to_dict(build_sample_plan())
    assert next(iter(document)) == "format_version"
    assert list(document) == list(SCHEMA["$defs"]["plan"]["required"])
    change = document["changes"][-1]
    assert change["address"] == "key.legacy"
    assert change["destructive"] is True
    assert change["gate"]["status"] == "blocked"
    assert [b["rule"] for b in change["gate"]["blocks"]] == ["deletion-protection", "allow-delete"]
    assert document["changes"][0]["gate"] == {"status": "allowed", "blocks": []}
    assert document["summary"] == {
        "add": 3,
        "change": 3,
        "delete": 1,
        "restore": 1,
        "adopt": 0,
        "release": 0,
        "blocked": 1,
    }
    assert document["cost"]["monthly_delta_usd"] == 2.0
    assert document["cost"]["prices"].startswith("KMS list prices: $1/key-month")


def test_to_dict_copies_so_editing_the_document_leaves_the_plan_alone() -> None:
    plan = build_sample_plan()
    document = plan_to_dict(plan)
    document["changes"][0]["after"]["description"] = "edited"
    document["changes"][0]["calls"][1]["params"]["KeyId"]["$ref"] = "edited"
    assert plan.changes[0].after is not None
    assert plan.changes[0].after["description"] == "Orders table encryption"
    assert plan.changes[0].calls[1].params["KeyId"] == ref("key.orders")


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_json_objects = st.dictionaries(st.text(max_size=6), _json, max_size=4)
_names = st.text(min_size=1, max_size=10)


@st.composite
def _changes(draw: st.DrawFn) -> Change:
    resource = draw(st.sampled_from(Resource))
    # Any name without a dot: an address is typed (key.NAME, alias.alias/NAME,
    # grant.KEY.NAME), so only well-formed ones make a plan.
    name = draw(st.text(min_size=1, max_size=10).filter(lambda n: "." not in n))
    address = {
        Resource.KEY: f"key.{name}",
        Resource.ALIAS: f"alias.alias/{name}",
        Resource.GRANT: f"grant.{name}.{name}",
        Resource.REPLICA: f"replica.{name}.eu-west-1",
    }[resource]
    return Change(
        address=address,
        resource=resource,
        action=draw(st.sampled_from(Action)),
        key=name,
        before=draw(st.none() | _json_objects),
        after=draw(st.none() | _json_objects),
        attributes=tuple(
            draw(
                st.lists(
                    st.builds(AttributeChange, name=_names, before=_json, after=_json), max_size=2
                )
            )
        ),
        calls=tuple(
            draw(
                st.lists(
                    st.builds(
                        ApiCall,
                        operation=st.sampled_from(["CreateKey", "PutKeyPolicy", "CreateAlias"]),
                        params=_json_objects,
                    ),
                    max_size=2,
                )
            )
        ),
        depends_on=tuple(draw(st.lists(_names, max_size=2))),
        blocked=tuple(
            draw(
                st.lists(
                    st.builds(GateBlock, rule=_names, reason=_names, unblock=_names), max_size=2
                )
            )
        ),
        reason=draw(st.text(max_size=10)),
        placement=draw(
            st.none()
            | st.builds(
                Placement,
                account_id=st.from_regex(r"\A[0-9]{12}\Z"),
                region=st.sampled_from(["us-east-1", "eu-west-1"]),
            )
        ),
        policy_diff=draw(
            st.none()
            | st.fixed_dictionaries(
                {
                    "label_only": st.booleans(),
                    "statements": st.just([]),
                    "unified": st.text(max_size=20),
                    "access": st.just([]),
                }
            )
        ),
    )


@st.composite
def _plans(draw: st.DrawFn) -> Plan:
    return Plan(
        stack=draw(_names),
        account_id=draw(st.from_regex(r"\A[0-9]{12}\Z")),
        region=draw(st.sampled_from(["us-east-1", "eu-west-1"])),
        role=draw(
            st.none()
            | st.builds(
                Role,
                arn=st.just("arn:aws:iam::222233334444:role/x"),
                external_id=st.none() | st.text(max_size=8),
                session_name=st.none() | st.text(max_size=8),
            )
        ),
        changes=tuple(draw(st.lists(_changes(), max_size=4))),
        gate=draw(
            st.builds(
                GateOptions,
                allow_delete=st.booleans(),
                allow_delete_all=st.booleans(),
                unused_for_days=st.integers(min_value=0, max_value=3650),
                ignore_usage=st.booleans(),
                allow_alias_takeover=st.booleans(),
                bypass_policy_lockout_safety_check=st.booleans(),
            )
        ),
        unmanaged=tuple(draw(st.lists(st.text(max_size=10), max_size=2))),
        warnings=tuple(draw(st.lists(st.text(max_size=10), max_size=2))),
        cost=tuple(
            draw(
                st.lists(
                    st.builds(
                        CostLine,
                        description=st.text(max_size=10),
                        monthly_usd=st.floats(min_value=-10, max_value=10),
                    ),
                    max_size=2,
                )
            )
        ),
        fingerprint=draw(st.dictionaries(_names, st.text(max_size=10), max_size=3)),
        kmsplan_version=draw(st.text(max_size=6)),
    )


@settings(max_examples=60, deadline=None)
@given(_plans())
def test_any_plan_round_trips_through_json_text(plan: Plan) -> None:
    text = json.dumps(plan_to_dict(plan))
    assert plan_from_dict(json.loads(text)) == plan


# ---- schema -----------------------------------------------------------------------------------


def test_schema_is_a_valid_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$defs"]["plan"]["properties"]["format_version"] == {
        "$ref": "#/$defs/format_version"
    }
    assert SCHEMA["$defs"]["format_version"] == {
        "description": "Version of this document's format.",
        "const": FORMAT_VERSION,
    }
    assert FORMAT_VERSION == 2


@pytest.mark.parametrize(
    "plan",
    [build_sample_plan(), _plan(), _plan(_change(Action.DELETE, blocked=True))],
    ids=["sample", "empty", "blocked-delete"],
)
def test_rendered_plans_validate_against_the_schema(plan: Plan) -> None:
    VALIDATOR.validate(plan_to_dict(plan))


def test_schema_rejects_an_unknown_format_version_and_unknown_members() -> None:
    document = plan_to_dict(build_sample_plan())
    assert not VALIDATOR.is_valid({**document, "format_version": 1})
    assert not VALIDATOR.is_valid({**document, "format_version": 3})
    assert not VALIDATOR.is_valid({**document, "surprise": True})
    blocked_without_blocks = json.loads(json.dumps(document))
    blocked_without_blocks["changes"][-1]["gate"]["blocks"] = []
    assert not VALIDATOR.is_valid(blocked_without_blocks)


# ---- strict reading ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d.update(format_version=1),
            "plan document: unsupported format_version 1 (this kmsplan reads format_version 2); "
            "run kmsplan plan again",
        ),
        (
            lambda d: d.update(format_version=3),
            "plan document: unsupported format_version 3 (this kmsplan reads format_version 2); "
            "run kmsplan plan again",
        ),
        (
            lambda d: d.update(format_version=True),
            "plan document: unsupported format_version True (this kmsplan reads format_version "
            "2); run kmsplan plan again",
        ),
        (
            lambda d: d.pop("format_version"),
            "plan document: unsupported format_version None (this kmsplan reads format_version "
            "2); run kmsplan plan again",
        ),
        (lambda d: d.pop("stack"), "plan document: stack: missing"),
        (
            lambda d: d["changes"][3].update(action="replace"),
            "plan document: changes[3].action: expected one of create, update, delete, restore, "
            "adopt, release",
        ),
        (
            lambda d: d["changes"][0]["calls"][1].update(params=[]),
            "plan document: changes[0].calls[1].params: expected an object",
        ),
        (
            lambda d: d["gate"].update(unused_for_days="30"),
            "plan document: gate.unused_for_days: expected an integer",
        ),
        (
            lambda d: d["changes"][8]["gate"]["blocks"][0].pop("unblock"),
            "plan document: changes[8].gate.blocks[0].unblock: missing",
        ),
        (
            lambda d: d["cost"]["lines"][0].update(monthly_usd="1"),
            "plan document: cost.lines[0].monthly_usd: expected a number",
        ),
        (
            lambda d: d.update(unmanaged=[1]),
            "plan document: unmanaged[0]: expected a string",
        ),
        (lambda d: d.pop("role"), "plan document: role: missing"),
        (lambda d: d.update(role="arn"), "plan document: role: expected an object"),
        (lambda d: d["role"].update(arn=None), "plan document: role.arn: expected a string"),
        (
            lambda d: d["role"].update(external_id=7),
            "plan document: role.external_id: expected a string or null",
        ),
        (lambda d: d["role"].pop("session_name"), "plan document: role.session_name: missing"),
    ],
    ids=[
        "version-1",
        "future-version",
        "bool-version",
        "no-version",
        "missing-member",
        "bad-action",
        "params-not-object",
        "string-int",
        "block-without-unblock",
        "string-cost",
        "non-string-note",
        "no-role",
        "role-not-object",
        "role-arn-null",
        "role-external-id-number",
        "role-without-session-name",
    ],
)
def test_malformed_documents_are_refused_with_the_member_named(edit: Any, message: str) -> None:
    document = json.loads(json.dumps(plan_to_dict(build_sample_plan())))
    edit(document)
    with pytest.raises(PlanFormatError) as raised:
        plan_from_dict(document)
    assert str(raised.value) == message
    assert isinstance(raised.value, KmsplanError)
    assert int(raised.value.exit_code) == 1


def test_the_stacks_role_is_in_the_document_and_read_back() -> None:
    plan = build_sample_plan()
    assert plan_to_dict(plan)["role"] == {
        "arn": "arn:aws:iam::111122223333:role/kmsplan-payments",
        "external_id": "payments-7f3a",
        "session_name": None,
    }
    assert plan_from_dict(plan_to_dict(plan)).role == plan.role
    without = dataclasses.replace(plan, role=None)
    assert plan_to_dict(without)["role"] is None
    assert plan_from_dict(plan_to_dict(without)).role is None
    VALIDATOR.validate(plan_to_dict(without))
    bad_arn = {**plan_to_dict(plan), "role": {**plan_to_dict(plan)["role"], "arn": "role/x"}}
    assert not VALIDATOR.is_valid(bad_arn)


def test_a_non_object_document_is_refused() -> None:
    with pytest.raises(PlanFormatError, match=r"^plan document: expected a JSON object$"):
        plan_from_dict([])  # type: ignore[arg-type]


def test_derived_members_are_recomputed_not_trusted() -> None:
    document = plan_to_dict(build_sample_plan())
    document["summary"]["blocked"] = 0
    document["changes"][-1]["gate"]["status"] = "allowed"
    document["changes"][-1]["destructive"] = False
    plan = plan_from_dict(document)
    assert [c.address for c in plan.blocked] == ["key.legacy"]
    assert plan.changes[-1].destructive


# ---- summary line -----------------------------------------------------------------------------


def test_empty_plan_says_no_changes() -> None:
    assert summary_line(_plan()) == NO_CHANGES == "No changes. KMS matches the manifests."


def test_summary_counts_blocked_changes_only_as_blocked() -> None:
    plan = _plan(
        _change(Action.CREATE, "a"),
        _change(Action.CREATE, "b"),
        _change(Action.UPDATE, "c"),
        _change(Action.DELETE, "d"),
        _change(Action.DELETE, "e", blocked=True),
        cost=(CostLine(description="two keys", monthly_usd=2.0),),
    )
    assert summary_line(plan) == (
        "Plan: 2 to add, 1 to change, 1 to delete, 1 blocked. Monthly cost: +$2.00 "
        "(KMS list prices: $1/key-month, first two rotations +$1/month each; "
        "requests not counted)."
    )


def test_restores_are_counted_separately_and_only_when_present() -> None:
    with_restore = _plan(_change(Action.RESTORE, "r"), _change(Action.UPDATE, "u"))
    assert summary_line(with_restore).startswith(
        "Plan: 0 to add, 1 to change, 0 to delete, 1 to restore, 0 blocked. Monthly cost: $0.00 ("
    )
    assert "restore" not in summary_line(_plan(_change(Action.UPDATE, "u")))


def test_a_plan_of_only_blocked_changes_is_not_no_changes() -> None:
    line = summary_line(_plan(_change(Action.DELETE, blocked=True)))
    assert line.startswith("Plan: 0 to add, 0 to change, 0 to delete, 1 blocked.")


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (2.0, "+$2.00"),
        (-1.0, "-$1.00"),
        (0.0, "$0.00"),
        (0.004, "$0.00"),
        (-0.5, "-$0.50"),
        (1234.5, "+$1234.50"),
    ],
)
def test_cost_delta_is_signed_dollars_and_cents(amount: float, shown: str) -> None:
    assert format_usd(amount) == shown


def test_negative_cost_delta_in_the_summary() -> None:
    plan = _plan(
        _change(Action.DELETE, "old"),
        cost=(CostLine(description="key old stops billing", monthly_usd=-3.0),),
    )
    assert "Monthly cost: -$3.00 (" in summary_line(plan)
