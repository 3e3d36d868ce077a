"""The PR comment carries every fact the text plan carries: for every kind of change, each
attribute's value (before, after, or both), the order and the calls appear in both the text
and the markdown rendering."""

from __future__ import annotations

import dataclasses

import pytest
from builders import (
    NOW,
    desired_key,
    grant,
    key_id_for,
    live_key,
    live_state,
    stack,
    unused,
)
from golden.sample_plan import build_sample_plan

from kmsplan.model import GrantConstraints, KeyState, Rotation
from kmsplan.plan.differ import diff
from kmsplan.plan.types import Change, GateOptions, Plan
from kmsplan.render import markdown, text
from kmsplan.render._common import attribute_rows, format_value


def _differ_plan() -> Plan:
    """Every kind of change the differ makes: key create, update, restore, delete, trailing
    disable (declared and after a temporary enable); alias create, move and delete; grant
    create, replace and revoke."""
    partner = dataclasses.replace(
        grant("partner"),
        grantee="arn:aws:iam::999988887777:role/partner",
        operations=("Decrypt", "Encrypt", "GenerateDataKey"),
        constraints=GrantConstraints(encryption_context_subset=(("tenant", "acme"),)),
    )
    orders = desired_key(
        "orders",
        description="Orders " + "x" * 150,  # a long value: folded in markdown
        aliases=("alias/orders", "alias/moved"),
        grants=(grant("app"), partner),
        tags={"team": "payments"},
    )
    archive = desired_key(
        "archive", enabled=False, rotation=Rotation(enabled=True), grants=(grant("new"),)
    )
    vault = desired_key("vault", enabled=False, grants=(grant("reader"),))
    restored = desired_key("restored", description="back")
    live_orders = live_key(
        desired_key(
            "orders",
            description="Orders",
            grants=(dataclasses.replace(grant("app"), operations=("Sign",)), grant("gone")),
        ),
        tags=(("team", "billing"),),
    )
    live = live_state(
        live_orders,
        live_key(desired_key("archive", enabled=False)),
        live_key(restored, state=KeyState.PENDING_DELETION),
        live_key("old", protected=False),
        aliases={"alias/moved": key_id_for("old"), "alias/stale": live_orders.key_id},
        last_usage={"old": unused()},
    )
    return diff(
        stack(orders, archive, vault, restored), live, GateOptions(allow_delete=True), now=NOW
    )


PLANS = {"sample": build_sample_plan, "differ": _differ_plan}


def _facts(change: Change) -> list[str]:
    skip = frozenset({"policy"}) if change.policy_diff is not None else frozenset()
    facts = [str(change.address)]
    for row in attribute_rows(change, skip):
        facts += [row.name]
        facts += [
            format_value(v) for v in (row.before, row.after) if row.sign == "~" or v is not None
        ]
    facts += [str(a) for a in change.depends_on]
    facts += [call.operation for call in change.calls]
    return facts


@pytest.mark.parametrize("name", PLANS)
def test_every_fact_of_every_change_is_in_both_the_text_and_the_markdown_plan(name: str) -> None:
    plan = PLANS[name]()
    rendered_text = text.render(plan, color=False)
    rendered_markdown = markdown.render(plan)
    kinds = {(c.resource, c.action, c.address.step) for c in plan.changes}
    assert len(kinds) >= 8
    for change in plan.changes:
        for fact in _facts(change):
            assert fact in rendered_text, (change.address, fact)
            assert fact in rendered_markdown, (change.address, fact)


def test_a_new_grant_shows_grantee_operations_constraints_and_foreign_account() -> None:
    rendered = markdown.render(_differ_plan())
    assert '`"arn:aws:iam::999988887777:role/partner"`' in rendered
    assert '`["Decrypt", "Encrypt", "GenerateDataKey"]`' in rendered
    assert '`{"tenant": "acme"}`' in rendered


def test_long_values_fold_into_details_in_markdown() -> None:
    rendered = markdown.render(_differ_plan())
    assert "<details><summary>after</summary>" in rendered
    assert '"Orders ' + "x" * 150 + '"' in rendered
