"""A run of several stacks, as text and as Markdown: the stacks found, each stack's plan (or the
error that stopped it) under its own heading, then one summary for the run.

Takes what the run layer hands over (per stack: the stack and its plan, or its error) and
returns strings; each plan is rendered by the single-stack renderers.
"""

from __future__ import annotations

from collections.abc import Sequence

from kmsplan.plan.serialize import Outcome, StackStatus, run_summary_line, summary_line
from kmsplan.render import markdown, text
from kmsplan.render.stacks import heading, stacks_found, where
from kmsplan.render.terminal import one_line

# More stacks than this: each stack's plan is folded in a <details> block in Markdown.
FOLD_ABOVE = 3


__all__ = ["FOLD_ABOVE", "Outcome", "render_markdown", "render_text", "run_summary"]


def run_summary(outcomes: Sequence[Outcome]) -> str:
    """`Run: 3 stacks: 1 with changes, 0 blocked, 1 failed, 1 without changes.` (the counts
    of the JSON run document's summary)."""
    return run_summary_line([StackStatus.of(o.plan) for o in outcomes])


def render_text(outcomes: Sequence[Outcome], *, color: bool) -> str:
    lines = stacks_found([o.stack for o in outcomes])
    lines.append("")
    for outcome in outcomes:
        lines.append(heading(outcome.stack))
        if outcome.plan is not None:
            lines.append(text.render(outcome.plan, color=color).rstrip("\n"))
        else:
            lines.append(f"failed: {one_line(outcome.error or '')}")
        lines.append("")
    lines.append(run_summary(outcomes))
    return "\n".join(lines) + "\n"


def render_markdown(outcomes: Sequence[Outcome]) -> str:
    fold = len(outcomes) > FOLD_ABOVE
    lines = [
        f"## kmsplan plan: {len(outcomes)} stacks",
        "",
        "| Stack | Account, Region | Result |",
        "| --- | --- | --- |",
    ]
    for o in outcomes:
        result = summary_line(o.plan) if o.plan is not None else "**failed**"
        lines.append(f"| `{o.stack.name}` | {where(o.stack)} | {result} |")
    lines += ["", run_summary(outcomes), ""]
    for outcome in outcomes:
        body = (
            markdown.render(outcome.plan).rstrip("\n")
            if outcome.plan is not None
            else f"### stack `{outcome.stack.name}`: failed\n\n```\n{outcome.error}\n```"
        )
        if fold:
            title = f"{outcome.stack.name}: {StackStatus.of(outcome.plan).words}"
            lines += ["<details>", f"<summary>{title}</summary>", "", body, "", "</details>"]
        else:
            lines.append(body)
        lines.append("")
    return "\n".join(lines)
