"""A run of several stacks: the report (text, Markdown) and the exit code for the run."""

from __future__ import annotations

from builders import desired_key, live_state, stack

from kmsplan.errors import ExitCode
from kmsplan.model import Stack
from kmsplan.plan.differ import diff
from kmsplan.plan.types import GateOptions, Plan
from kmsplan.render.run import render_markdown, render_text
from kmsplan.run.stacks import StackOutcome, run_exit_code


def clean(name: str) -> StackOutcome:
    desired = stack(name=name)  # nothing declared, nothing live: no changes
    plan = diff(desired, live_state(stack_name=name), GateOptions())
    return StackOutcome(stack=desired, plan=plan)


def changed(name: str) -> StackOutcome:
    desired = stack(desired_key("a"), name=name)
    plan = diff(desired, live_state(stack_name=name), GateOptions())
    return StackOutcome(stack=desired, plan=plan)


def failed(name: str) -> StackOutcome:
    return StackOutcome(stack=Stack(name=name, region="eu-west-1"), error="error: nope")


def test_the_exit_code_is_1_if_any_failed_else_2_with_changes_else_0() -> None:
    assert run_exit_code([clean("a"), changed("b"), failed("c")], detailed=True) is ExitCode.ERROR
    assert run_exit_code([clean("a"), failed("c")], detailed=False) is ExitCode.ERROR
    assert run_exit_code([clean("a"), changed("b")], detailed=True) is ExitCode.CHANGES
    assert run_exit_code([clean("a"), changed("b")], detailed=False) is ExitCode.OK
    assert run_exit_code([clean("a"), clean("b")], detailed=True) is ExitCode.OK


def test_text_lists_the_stacks_then_each_plan_then_one_summary() -> None:
    out = render_text([clean("a"), failed("c")], color=False)
    lines = out.splitlines()
    assert lines[0] == "Stacks (2):"
    assert lines[2] == "  c  (account of the credentials), eu-west-1"
    assert "=== stack a ===" in lines and "=== stack c ===" in lines
    assert "failed: error: nope" in lines
    assert lines[-1] == "Run: 2 stacks: 0 with changes, 0 blocked, 1 failed, 1 without changes."


def test_markdown_folds_each_stack_when_there_are_many() -> None:
    few = render_markdown([clean("a"), changed("b")])
    assert "<details>" not in few
    assert "| Stack | Account, Region | Result |" in few
    many = render_markdown([clean("a"), changed("b"), clean("c"), failed("d")])
    assert many.count("<details>") == 4 == many.count("</details>")
    assert "<summary>b: changes</summary>" in many
    assert "<summary>d: failed</summary>" in many
    assert "| `d` | (account of the credentials), eu-west-1 | **failed** |" in many
    plan: Plan | None = changed("b").plan
    assert plan is not None and plan.has_changes
