"""The plan for a terminal or a CI log, in the manner of `terraform plan`.

Colour is the caller's decision (a terminal, NO_COLOR, --no-color): `render` looks at its
`color` flag only, never at the environment, so the same plan always renders the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kmsplan.lint.finding import Severity
from kmsplan.plan.actions import ACTIONS, BLOCKED_SYMBOL
from kmsplan.plan.serialize import format_usd, summary_line
from kmsplan.plan.types import Action, Change, Plan
from kmsplan.render._common import (
    LEGEND,
    access_lines,
    attribute_rows,
    finding_location,
    one_line,
    policy_headline,
    symbol,
    words,
)

_RESET = "\x1b[0m"
_STYLES: Mapping[str, str] = {
    "green": "\x1b[32m",
    "yellow": "\x1b[33m",
    "red": "\x1b[31m",
    "cyan": "\x1b[36m",
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
    "blocked": "\x1b[1;31m",
}
# A symbol's colour is its action's (attribute rows reuse the symbols: + added, ~ changed,
# - removed).
_SYMBOL_STYLE: Mapping[str, str] = {
    **{info.symbol: info.style for info in ACTIONS.values()},
    BLOCKED_SYMBOL: "blocked",
}

_INDENT = "      "  # under the "  + address" header line


class _Painter:
    def __init__(self, *, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        if not self.color or not text:
            return text
        return f"{_STYLES[style]}{text}{_RESET}"


# Everything from a plan that reaches a line goes through `one_line` (aliased `s`): a live
# string cannot carry a control character to the terminal. The painter adds the only escape
# sequences, after.
s = one_line


def render(plan: Plan, *, color: bool) -> str:
    """The whole plan as text, ending with the summary line and a newline."""
    paint = _Painter(color=color)
    lines: list[str] = [
        paint(
            f"kmsplan plan for stack {s(plan.stack)}, account {s(plan.account_id)}, "
            f"{s(plan.region)}",
            "bold",
        ),
        "",
    ]
    if plan.changes:
        lines += _legend(plan, paint)
        for change in plan.changes:
            lines += _change(change, plan.account_id, paint)
            lines.append("")
    lines += _notes(plan, paint)
    lines += _findings(plan, paint)
    lines += _cost(plan, paint)
    summary = summary_line(plan)
    if plan.blocked:
        summary = paint(summary, "blocked")
    elif plan.has_changes:
        summary = paint(summary, "bold")
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _legend(plan: Plan, paint: _Painter) -> list[str]:
    used = {symbol(c) for c in plan.changes}
    lines = ["Actions are shown with these symbols:"]
    for sym, meaning in LEGEND.items():
        if sym in used:
            style = _SYMBOL_STYLE[sym]
            lines.append(f"  {paint(sym, style)} {meaning}")
    lines += ["", "kmsplan will make these changes, in this order:", ""]
    return lines


def _change(change: Change, account_id: str, paint: _Painter) -> list[str]:
    style = _SYMBOL_STYLE[symbol(change)]
    headline = words(change).headline
    if change.is_blocked:
        headline = f"would be {headline.removeprefix('will be ')}, but is BLOCKED"
    lines = [f"  {paint(symbol(change) + ' ' + s(change.address), style)} {headline}"]
    if change.reason:
        lines.append(f"{_INDENT}{paint('# ' + s(change.reason), 'dim')}")

    skip = frozenset({"policy"}) if change.policy_diff is not None else frozenset()
    lines += _attributes(change, skip, paint)
    if change.policy_diff is not None:
        lines += _policy(change, change.policy_diff, account_id, paint)
    for block in change.blocked:
        lines.append(
            f"{_INDENT}{paint('blocked by ' + s(block.rule) + ':', 'blocked')} {s(block.reason)}"
        )
        lines.append(f"{_INDENT}  to unblock: {s(block.unblock)}")
    if change.depends_on:
        lines.append(f"{_INDENT}after: {s(', '.join(change.depends_on))}")
    if change.calls:
        lines.append(f"{_INDENT}calls: {s(', '.join(call.operation for call in change.calls))}")
    return lines


def _attributes(change: Change, skip: frozenset[str], paint: _Painter) -> list[str]:
    rows = [(row.sign, s(row.name), s(row.shown)) for row in attribute_rows(change, skip)]
    if not rows:
        return []
    # Align values on the longest name, ignoring the rare very long one so it cannot push
    # every other value far to the right.
    width = max((len(name) + 1 for _, name, _ in rows if len(name) < 28), default=0)
    return [
        f"{_INDENT}{paint(sign, _SYMBOL_STYLE[sign])} {(name + ':').ljust(width)} {shown}"
        for sign, name, shown in rows
    ]


def _policy(
    change: Change, policy_diff: Mapping[str, Any], account_id: str, paint: _Painter
) -> list[str]:
    sign = "+" if change.action is Action.CREATE else "~"
    headline = policy_headline(policy_diff)
    lines = [f"{_INDENT}{paint(sign, _SYMBOL_STYLE[sign])} policy: {s(headline)}"]
    for raw in str(policy_diff.get("unified") or "").splitlines():
        line = s(raw)
        if line.startswith(("+++", "---")):
            styled = paint(line, "bold")
        elif line.startswith("@@"):
            styled = paint(line, "cyan")
        elif line.startswith("+"):
            styled = paint(line, "green")
        elif line.startswith("-"):
            styled = paint(line, "red")
        else:
            styled = line
        lines.append(f"{_INDENT}    {styled}".rstrip())
    access = access_lines(policy_diff, account_id)
    if access:
        lines.append(f"{_INDENT}  access:")
        for principal, verb, actions in access:
            lines.append(
                f"{_INDENT}    {s(principal)} {paint(verb, 'green' if verb == 'gains' else 'red')} "
                f"{s(', '.join(actions))}"
            )
    return lines


def _notes(plan: Plan, paint: _Painter) -> list[str]:
    lines: list[str] = []
    if plan.unmanaged:
        lines.append(paint("Unmanaged (read only: kmsplan never changes these):", "bold"))
        lines += [f"  • {s(note)}" for note in plan.unmanaged]
        lines.append("")
    if plan.warnings:
        lines.append(paint("Warnings:", "bold"))
        lines += [f"  {paint('warning:', 'yellow')} {s(warning)}" for warning in plan.warnings]
        lines.append("")
    return lines


def _findings(plan: Plan, paint: _Painter) -> list[str]:
    if not plan.findings:
        return []
    lines = [paint("Lint findings for the keys this plan changes:", "bold")]
    for finding in plan.findings:
        severity = finding.severity.value
        label = f"{severity} (suppressed)" if finding.suppressed else severity
        style = (
            "dim"
            if finding.suppressed
            else ("red" if finding.severity is Severity.ERROR else "yellow")
        )
        where = finding_location(finding)
        lines.append(f"  {paint(label, style)}: {finding.rule}: {finding.title}")
        detail = f"key {finding.key}"
        if where:
            detail += f", {where}"
        lines.append(f"      {detail}")
        if finding.message:
            lines.append(f"      {finding.message}")
    lines.append("")
    return lines


def _cost(plan: Plan, paint: _Painter) -> list[str]:
    if not plan.cost:
        return []
    lines = [paint("Monthly cost of this plan:", "bold")]
    width = max(len(format_usd(line.monthly_usd)) for line in plan.cost)
    for line in plan.cost:
        lines.append(f"  {format_usd(line.monthly_usd).rjust(width)}  {s(line.description)}")
    lines.append("")
    return lines
