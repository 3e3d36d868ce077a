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

from kmsplan.model import Rotation
from kmsplan.plan.differ import TEMPORARY_ENABLE_REASON, diff
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


def _disabled_key_plan() -> Plan:
    """A key that stays disabled but needs a new grant and rotation (a temporary enable), and
    a new key declared disabled with a grant (a trailing disable after the grant)."""
    archive = desired_key(
        "archive", enabled=False, rotation=Rotation(enabled=True), grants=(grant("new"),)
    )
    vault = desired_key("vault", enabled=False, grants=(grant("reader"),))
    live = live_state(live_key(desired_key("archive", enabled=False)))
    return diff(stack(archive, vault), live, GateOptions(), now=NOW)


def test_temporary_enable_and_trailing_disables_are_shown_to_reviewers() -> None:
    plan = _disabled_key_plan()
    assert [c.address for c in plan.changes] == [
        "key.archive",
        "key.vault",
        "grant.archive.new",
        "grant.vault.reader",
        "key.archive.disable",
        "key.vault.disable",
    ]
    out = text.render(plan, color=False)
    assert (
        "  ~ key.archive will be updated in place\n"
        f"      # {TEMPORARY_ENABLE_REASON}\n"
        "      ~ rotation.enabled: false → true\n"
        "      calls: EnableKey, EnableKeyRotation\n"
    ) in out
    assert (
        "  ~ key.archive.disable will be disabled\n"
        "      # disabled again after the temporary enable in key.archive; if an apply stops "
        "before this step, the key stays enabled and the next plan disables it\n"
        "      ~ enabled: true → false\n"
        "      after: key.archive, grant.archive.new\n"
        "      calls: DisableKey\n"
    ) in out
    assert "  ~ key.vault.disable will be disabled\n" in out
    # Each disable is part of its key's change: 1 key and 2 grants added, 1 key changed.
    assert out.endswith(
        "Plan: 3 to add, 1 to change, 0 to delete, 0 blocked. "
        f"{summary_line(plan).split('. ', 1)[1]}\n"
    )
    md = markdown.render(plan)
    assert (
        "| `~` | `key.archive` | update | `rotation.enabled` — enabled temporarily: KMS "
        "refuses CreateGrant/EnableKeyRotation on a disabled key; disabled again at the end "
        "of this apply | allowed |"
    ) in md
    assert "| `~` | `key.archive.disable` | disable | `enabled` — disabled again after" in md
    assert "**Plan: 3 to add, 1 to change, 0 to delete, 0 blocked.**" in md


def test_disabled_key_plan_validates_against_the_schema_and_round_trips() -> None:
    plan = _disabled_key_plan()
    document = json.loads(json_render.render(plan))
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document["summary"] == {
        "add": 3,
        "change": 1,
        "delete": 0,
        "restore": 0,
        "adopt": 0,
        "release": 0,
        "blocked": 0,
    }
    disable = next(c for c in document["changes"] if c["address"] == "key.vault.disable")
    assert (disable["resource"], disable["action"], disable["key"]) == ("key", "update", "vault")
    assert disable["calls"] == [
        {"operation": "DisableKey", "params": {"KeyId": {"$ref": "key.vault"}}}
    ]
    assert disable["depends_on"] == ["key.vault", "grant.vault.reader"]
    assert plan_from_dict(document) == plan
    # A trailing disable costs nothing (nor does the temporary enable).
    assert [line.description for line in plan.cost] == [
        "key.archive: automatic rotation (+$1.00/month for each of the first 2 rotations)",
        "key.vault: new key",
    ]
