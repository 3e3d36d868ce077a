"""A run of several stacks: the report (text, Markdown, one JSON run document) and the exit
code for the run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from builders import desired_key, live_state, stack

from kmsplan.errors import ExitCode
from kmsplan.model import Role, Stack
from kmsplan.plan.differ import diff
from kmsplan.plan.serialize import plan_to_dict
from kmsplan.plan.types import Action, Change, GateBlock, GateOptions, Plan, Resource
from kmsplan.render.json import render_run
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


# ---- JSON: one run document -------------------------------------------------------------------

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "schemas" / "plan.schema.json").read_text("utf-8")
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
ROLE = Role(arn="arn:aws:iam::222233334444:role/x", session_name="ci")


def blocked(name: str) -> StackOutcome:
    change = Change(
        address="key.a",
        resource=Resource.KEY,
        action=Action.DELETE,
        key="a",
        blocked=(GateBlock(rule="allow-delete", reason="r", unblock="u"),),
    )
    plan = Plan(stack=name, account_id="222233334444", region="eu-west-1", changes=(change,))
    return StackOutcome(
        stack=stack(name=name, account="222233334444", role=ROLE),
        plan=dataclasses.replace(plan, role=ROLE),
    )


def failed_with_role(name: str) -> StackOutcome:
    return StackOutcome(
        stack=Stack(name=name, account="222233334444", role=ROLE), error="error: AssumeRole"
    )


def test_json_is_one_run_document_that_validates_against_the_schema() -> None:
    outcomes = [clean("a"), changed("b"), blocked("c"), failed("d"), failed_with_role("e")]
    document = json.loads(render_run(outcomes))
    VALIDATOR.validate(document)
    assert list(document) == ["format_version", "kind", "summary", "stacks"]
    assert (document["format_version"], document["kind"]) == (2, "run")
    assert document["summary"] == {
        "stacks": 5,
        "with_changes": 1,
        "blocked": 1,
        "failed": 2,
        "without_changes": 1,
    }
    # The summary line of the text and Markdown reports counts the same way.
    assert render_text(outcomes, color=False).splitlines()[-1] == (
        "Run: 5 stacks: 1 with changes, 1 blocked, 2 failed, 1 without changes."
    )
    a, b, c, d, e = document["stacks"]
    assert [s["status"] for s in document["stacks"]] == [
        "no_changes",
        "changes",
        "blocked",
        "failed",
        "failed",
    ]
    # A planned stack: where its plan was made, and the plan document itself.
    plan = outcomes[1].plan
    assert plan is not None
    assert b == {
        "stack": "b",
        "status": "changes",
        "account": plan.account_id,
        "region": plan.region,
        "role": None,
        "error": None,
        "plan": plan_to_dict(plan),
    }
    assert c["role"] == {"arn": ROLE.arn, "external_id": None, "session_name": "ci"}
    assert c["plan"]["role"] == c["role"]
    # A failed stack: what its manifests declare (null where they declare nothing).
    assert d == {
        "stack": "d",
        "status": "failed",
        "account": None,
        "region": "eu-west-1",
        "role": None,
        "error": "error: nope",
        "plan": None,
    }
    assert (e["account"], e["region"], e["role"]["arn"]) == ("222233334444", None, ROLE.arn)
    assert a["plan"]["summary"]["add"] == 0


def test_json_run_document_is_ascii_indented_and_ends_with_a_newline() -> None:
    out = render_run([clean("a"), failed("d")])
    assert out.isascii() and out.endswith("}\n")
    assert out == json.dumps(json.loads(out), indent=2) + "\n"


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["stacks"][1].update(plan=None),  # a planned stack without its plan
        lambda d: d["stacks"][0].update(error="x"),  # an error beside a plan
        lambda d: d["stacks"][2].update(plan=d["stacks"][0]["plan"]),  # a failed stack's plan
        lambda d: d["stacks"][2].update(error=None),  # failed, no message
        lambda d: d["stacks"][0]["plan"].update(checksum="sha256:" + "0" * 64),
        lambda d: d["stacks"][0].update(status="no changes"),
        lambda d: d["summary"].pop("failed"),
        lambda d: d.update(kind="plan"),
        lambda d: d.update(stacks=[]),
        lambda d: d.update(format_version=1),
        lambda d: d.update(stack="a"),  # a plan document's member
    ],
    ids=[
        "planned-without-plan",
        "planned-with-error",
        "failed-with-plan",
        "failed-without-error",
        "plan-with-own-checksum",
        "unknown-status",
        "summary-without-failed",
        "wrong-kind",
        "no-stacks",
        "version-1",
        "plan-member",
    ],
)
def test_the_schema_refuses_a_run_document_of_another_shape(edit: Any) -> None:
    document = json.loads(render_run([clean("a"), changed("b"), failed("d")]))
    VALIDATOR.validate(document)
    edit(document)
    assert not VALIDATOR.is_valid(document)


def test_a_plan_document_is_still_a_plan_document_for_the_schema() -> None:
    plan = changed("b").plan
    assert plan is not None
    VALIDATOR.validate(plan_to_dict(plan))
    assert not VALIDATOR.is_valid({**plan_to_dict(plan), "kind": "run"})
