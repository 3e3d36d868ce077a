"""No control character from live KMS reaches a terminal, a CI log or a PR comment raw: live
tag values, descriptions, warnings and AWS messages are shown with escapes, and the JSON
document still holds the exact strings."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from builders import NOW, desired_key, live_key, live_state, stack

from kmsplan.apply.result import ApplyEvent, ChangeOutcome, ChangeStatus, EventKind
from kmsplan.commands.apply import Progress
from kmsplan.plan.differ import diff
from kmsplan.plan.types import GateOptions, Plan
from kmsplan.render import json as json_render
from kmsplan.render import markdown, text
from kmsplan.render.terminal import one_line, terminal_safe

# Clear screen, carriage return, bell, DEL, a C1 control (CSI), a right-to-left override.
HOSTILE = "\x1b[2J\rok\x07\x7f\x9b31m\u202etxt.exe"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_plan() -> Plan:
    want = desired_key("orders", description="Orders", tags={"team": "payments"})
    live = live_state(
        live_key(want, description=f"was {HOSTILE}", tags=(("team", HOSTILE), ("x", HOSTILE)))
    )
    live = dataclasses.replace(live, warnings=(f"warning with {HOSTILE}",))
    return diff(stack(want), live, GateOptions(), now=NOW)


def test_terminal_safe_escapes_controls_and_keeps_newlines_and_tabs() -> None:
    assert terminal_safe("a\x1b[31mb\tc\nd\u202e") == "a\\x1b[31mb\tc\nd\\u202e"
    assert one_line("a\nb\tc") == "a\\nb\\tc"
    assert terminal_safe("Grüße, 키 → ok") == "Grüße, 키 → ok"


@pytest.mark.parametrize("color", [False, True])
def test_the_text_plan_shows_live_strings_escaped(color: bool) -> None:
    rendered = text.render(hostile_plan(), color=color)
    # The only escapes are the renderer's own colours.
    assert not UNSAFE.search(re.sub(r"\x1b\[[0-9;]*m", "", rendered))
    # Attribute values read as JSON (C0 as \u001b), the rest as \x escapes.
    assert '"was \\u001b[2J\\rok\\u0007\\x7f\\x9b31m\\u202etxt.exe"' in rendered
    assert "warning with \\x1b[2J\\x0dok\\x07\\x7f\\x9b31m\\u202etxt.exe" in rendered


def test_the_markdown_plan_shows_live_strings_escaped() -> None:
    rendered = markdown.render(hostile_plan())
    assert not UNSAFE.search(rendered)
    assert "\\\\x1b" in rendered or "\\x1b" in rendered


def test_the_json_plan_escapes_controls_and_keeps_the_exact_strings() -> None:
    plan = hostile_plan()
    rendered = json_render.render(plan)
    assert not UNSAFE.search(rendered)
    document = json.loads(rendered)
    [change] = document["changes"]
    assert change["before"]["description"] == f"was {HOSTILE}"


def test_apply_progress_lines_escape_aws_messages() -> None:
    [change] = hostile_plan().changes
    outcome = ChangeOutcome(
        address=change.address,
        action=change.action,
        status=ChangeStatus.FAILED,
        failed_operation="TagResource",
        error_code="ValidationException",
        error_message=HOSTILE,
    )
    printed: list[str] = []
    progress = Progress(total=1)
    progress.line = lambda event: "line: " + outcome.describe()  # type: ignore[method-assign]
    import click

    original = click.echo
    try:
        click.echo = lambda message, **_: printed.append(str(message))  # type: ignore[assignment]
        progress.print(ApplyEvent(kind=EventKind.FINISHED, change=change, outcome=outcome))
    finally:
        click.echo = original  # type: ignore[assignment]
    assert printed and not UNSAFE.search(printed[0])
    assert "\\x1b[2J" in printed[0]
