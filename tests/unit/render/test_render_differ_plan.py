"""Plans as the differ really builds them: every renderer takes them, the JSON validates
against the schema and reads back as the same plan."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from builders import (
    ACCOUNT,
    NOW,
    desired_key,
    grant,
    live_key,
    live_state,
    stack,
    unused,
    user_policy,
)

from kmsplan.plan.differ import diff
from kmsplan.plan.serialize import plan_from_dict, plan_to_dict, summary_line
from kmsplan.plan.types import GateOptions, Plan
from kmsplan.render import json as json_render
from kmsplan.render import markdown, text

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "schemas" / "plan.schema.json").read_text("utf-8")
)


def _differ_plan() -> Plan:
    orders = desired_key(
        "orders",
        description="Orders",
        aliases=("alias/payments/orders",),
        policy=user_policy(f"arn:aws:iam::{ACCOUNT}:role/app"),
        grants=(grant("app"),),
        tags={"team": "payments"},
    )
    invoices = desired_key("invoices", description="Invoices v2", tags={"team": "payments"})
    live = live_state(
        live_key(invoices, description="Invoices", tags=(("team", "billing"),)),
        live_key("old", protected=True),
        last_usage={"old": unused()},
    )
    return diff(stack(orders, invoices), live, GateOptions(), now=NOW)


def test_differ_plan_validates_against_the_schema_and_round_trips() -> None:
    plan = _differ_plan()
    assert plan.changes and plan.blocked  # the scenario has creates, an update and a block
    document = json.loads(json_render.render(plan))
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert plan_from_dict(document) == plan
    assert plan_from_dict(plan_to_dict(plan)) == plan


def test_differ_plan_renders_in_every_format_ending_with_the_summary() -> None:
    plan = _differ_plan()
    line = summary_line(plan)
    assert line.startswith("Plan: ") and " 1 blocked. Monthly cost: " in line
    assert text.render(plan, color=False).endswith(line + "\n")
    out = markdown.render(plan)
    assert "| `!` | `key.old` | schedule deletion |" in out
    for change in plan.changes:
        assert f"`{change.address}`" in out
