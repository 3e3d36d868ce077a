"""`StackRuns`, the run of several stacks, with fake stack runs (no AWS): each stack's run is
opened, planned and closed on its own thread; nothing is applied without the run's decision;
--fail-fast applies in order and stops at the first failure; a crash is not swallowed."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from kmsplan.apply import ApplyResult, ChangeOutcome, ChangeStatus
from kmsplan.model import Stack
from kmsplan.plan.types import Action, ApiCall, Change, GateOptions, Plan, Resource
from kmsplan.run import AwsSettings
from kmsplan.run.clients import Budget
from kmsplan.run.session import Run
from kmsplan.run.stacks import StackSource, open_stacks

AWS = AwsSettings(region="eu-west-1", parallelism=4)


def plan_of(name: str, *, changes: int = 1) -> Plan:
    tags = [
        {"TagKey": "kmsplan:stack", "TagValue": name},
        {"TagKey": "kmsplan:key", "TagValue": "k"},
    ]
    change = Change(
        address="key.k",
        resource=Resource.KEY,
        action=Action.CREATE,
        key="k",
        calls=(ApiCall(operation="CreateKey", params={"Tags": tags}),),
    )
    return Plan(
        stack=name, account_id="123456789012", region="eu-west-1", changes=(change,) * changes
    )


class FakeRun(Run):
    def __init__(self, plan: Plan | Exception) -> None:
        self._plan = plan

    def plan(self, gate: GateOptions, *, now: datetime | None = None) -> Plan:
        if isinstance(self._plan, Exception):
            raise self._plan
        return self._plan


class Journal:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[str] = []

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)

    def source(self, name: str, plan: Plan | Exception) -> StackSource:
        @contextlib.contextmanager
        def opened(budget: Budget) -> Iterator[Run]:
            self.add(f"open {name}")
            try:
                yield FakeRun(plan)
            finally:
                self.add(f"close {name}")

        return StackSource(Stack(name=name), opened)


def result(ok: bool) -> ApplyResult:
    status = ChangeStatus.DONE if ok else ChangeStatus.FAILED
    outcome = ChangeOutcome(address="key.k", action=Action.CREATE, status=status)
    return ApplyResult(outcomes=(outcome,))


def test_leaving_without_applying_closes_every_stack_untouched() -> None:
    journal = Journal()
    sources = [journal.source(n, plan_of(n)) for n in ("a", "b")]
    with open_stacks(sources, AWS, GateOptions()) as runs:
        assert [o.plan and o.plan.stack for o in runs.planned] == ["a", "b"]
        assert [s.name for s in runs.to_apply] == ["a", "b"]
        assert not any(e.startswith("close") for e in journal.events)  # locks still held
    assert sorted(journal.events) == ["close a", "close b", "open a", "open b"]


def test_fail_fast_applies_in_order_and_stops_at_the_first_failure() -> None:
    journal = Journal()
    sources = [journal.source(n, plan_of(n)) for n in ("a", "b", "c", "d")]

    def apply(stack: Stack, run: Run, plan: Plan, stop: threading.Event) -> ApplyResult:
        journal.add(f"apply {stack.name}")
        return result(ok=stack.name != "b")

    with open_stacks(sources, AWS, GateOptions()) as runs:
        outcomes = runs.apply(apply, fail_fast=True)
    assert [e for e in journal.events if e.startswith("apply")] == ["apply a", "apply b"]
    assert [o.failed for o in outcomes] == [False, True, True, True]
    assert outcomes[2].error == (
        "stack b failed first (--fail-fast); nothing was changed in this stack"
    )


def test_a_stack_that_fails_to_plan_is_reported_and_the_others_are_applied() -> None:
    from kmsplan.errors import KmsplanError

    journal = Journal()
    sources = [
        journal.source("a", plan_of("a")),
        journal.source("b", KmsplanError("no credentials")),
        journal.source("c", plan_of("c", changes=0)),
    ]
    applied: list[str] = []

    def apply(stack: Stack, run: Run, plan: Plan, stop: threading.Event) -> ApplyResult:
        applied.append(stack.name)
        return result(ok=True)

    with open_stacks(sources, AWS, GateOptions()) as runs:
        assert [s.name for s in runs.to_apply] == ["a"]
        outcomes = runs.apply(apply, fail_fast=False)
    assert applied == ["a"]
    assert [o.error for o in outcomes] == [None, "error: no credentials", None]
    assert "close b" in journal.events


def test_a_crash_in_one_stack_is_raised_once_every_stack_is_closed() -> None:
    journal = Journal()
    sources = [journal.source("a", plan_of("a")), journal.source("b", RuntimeError("bug"))]
    with pytest.raises(RuntimeError, match="bug"), open_stacks(sources, AWS, GateOptions()):
        pytest.fail("the run must not be entered")
    assert sorted(journal.events) == ["close a", "close b", "open a", "open b"]


def test_an_apply_crash_stops_the_other_stacks_and_is_raised(monkeypatch: Any) -> None:
    journal = Journal()
    sources = [journal.source(n, plan_of(n)) for n in ("a", "b")]
    stops: list[bool] = []
    both = threading.Barrier(2, timeout=30)

    def apply(stack: Stack, run: Run, plan: Plan, stop: threading.Event) -> ApplyResult:
        both.wait()
        if stack.name == "a":
            raise RuntimeError("crash in a")
        stop.wait(timeout=30)  # b is still applying when a crashes: it is told to stop
        stops.append(stop.is_set())
        return result(ok=True)

    runs = open_stacks(sources, AWS, GateOptions())
    with pytest.raises(RuntimeError, match="crash in a"), runs:
        runs.apply(apply, fail_fast=False)
    assert stops == [True]
