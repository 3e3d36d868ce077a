"""The monthly cost delta at KMS list prices."""

from __future__ import annotations

import dataclasses

from builders import NOW, desired_key, live_key, live_state, never_used, stack

from kmsplan.model import KeyState, Rotation
from kmsplan.plan.cost import KEY_MONTHLY_USD, ROTATION_CAP_MONTHLY_USD, cost_lines
from kmsplan.plan.differ import diff
from kmsplan.plan.types import GateOptions


def test_list_prices_are_the_documented_ones() -> None:
    assert KEY_MONTHLY_USD == 1.00
    assert ROTATION_CAP_MONTHLY_USD == 2.00


def test_new_key_with_rotation_costs_up_to_three_dollars_a_month() -> None:
    key = desired_key("orders", rotation=Rotation(enabled=True))
    plan = diff(stack(key), live_state(), GateOptions(), now=NOW)
    assert [(c.description, c.monthly_usd) for c in plan.cost] == [
        ("key.orders: new key", 1.00),
        ("key.orders: automatic rotation (+$1.00/month for each of the first 2 rotations)", 2.00),
    ]
    assert plan.monthly_cost_delta == 3.00


def test_new_key_without_rotation_costs_one_dollar() -> None:
    plan = diff(stack(desired_key("orders")), live_state(), GateOptions(), now=NOW)
    assert plan.monthly_cost_delta == 1.00


def test_deleting_a_key_saves_its_monthly_cost() -> None:
    keep, gone = desired_key("orders"), desired_key("legacy")
    live = dataclasses.replace(
        live_state(live_key(keep), live_key(gone, protected=False)),
        last_usage={"legacy": never_used()},
    )
    plan = diff(stack(keep), live, GateOptions(allow_delete=True), now=NOW)
    assert [c.monthly_usd for c in plan.cost] == [-1.00]


def test_blocked_changes_cost_nothing() -> None:
    keep, gone = desired_key("orders"), desired_key("legacy")
    live = live_state(live_key(keep), live_key(gone))  # protected: blocked
    plan = diff(stack(keep), live, GateOptions(allow_delete=True), now=NOW)
    assert plan.blocked and plan.cost == ()


def test_restoring_a_key_bills_it_again() -> None:
    key = desired_key("orders")
    live = live_state(live_key(key, state=KeyState.PENDING_DELETION))
    plan = diff(stack(key), live, GateOptions(), now=NOW)
    assert [(c.description, c.monthly_usd) for c in plan.cost] == [
        ("key.orders: restored key is billed again", 1.00)
    ]


def test_turning_rotation_on_adds_the_rotation_cap_and_a_new_period_adds_nothing() -> None:
    want = desired_key("orders", rotation=Rotation(enabled=True, period_days=180))
    off = live_state(live_key(want, rotation=Rotation(enabled=False)))
    assert diff(stack(want), off, GateOptions(), now=NOW).monthly_cost_delta == 2.00
    other_period = live_state(live_key(want, rotation=Rotation(enabled=True, period_days=365)))
    plan = diff(stack(want), other_period, GateOptions(), now=NOW)
    assert plan.changes and plan.cost == ()
    assert cost_lines(()) == ()


def test_turning_rotation_off_saves_nothing() -> None:
    # Rotated key material already billed stays billed.
    want = desired_key("orders", rotation=Rotation(enabled=False))
    on = live_state(live_key(want, rotation=Rotation(enabled=True, period_days=365)))
    plan = diff(stack(want), on, GateOptions(), now=NOW)
    assert plan.changes and plan.cost == ()
