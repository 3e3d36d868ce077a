"""The plan as a pull-request comment (GitHub-flavoured Markdown).

Everything that comes from manifests or from KMS (descriptions, reasons, principals, lint
messages) is escaped: it cannot break a table, start a heading or inject HTML. The only HTML
is `<details>` around long policy diffs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kmsplan.lint.finding import Severity
from kmsplan.plan.serialize import format_usd, summary_sentences
from kmsplan.plan.types import Change, Plan
from kmsplan.render._common import (
    LEGEND,
    Row,
    access_lines,
    attribute_rows,
    finding_location,
    format_value,
    policy_headline,
    symbol,
    terminal_safe,
    words,
)

# Policy diffs longer than this many lines are folded into <details>.
FOLD_DIFF_LINES = 100
# Attribute values longer than this many characters are folded into <details>.
LONG_VALUE = 120
# Plans with more changes than this fold their per-change details into <details>.
FOLD_DETAILS_CHANGES = 10


# CommonMark lets any ASCII punctuation be backslash-escaped; these are the characters that
# can start emphasis, links, code, HTML, strikethrough, headings, math (GitHub renders
# $...$ as LaTeX) or break table cells.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#!&$])")


_CODE_SPAN = re.compile(r"`([^`]+)`")


def text(value: object, *, in_table: bool = False) -> str:
    """Free text, safe anywhere inline: one line, Markdown escaped. Text between single
    backticks (gate and lint messages quote manifest snippets that way) stays a code span,
    which cannot carry markup either."""
    flat = " ".join(terminal_safe(str(value)).split())
    parts: list[str] = []
    last = 0
    for match in _CODE_SPAN.finditer(flat):
        parts.append(_SPECIAL.sub(r"\\\1", flat[last : match.start()]))
        parts.append(code(match.group(1), in_table=in_table))
        last = match.end()
    parts.append(_SPECIAL.sub(r"\\\1", flat[last:]))
    return "".join(parts)


def code(value: object, *, in_table: bool = False) -> str:
    """An inline code span. Backticks inside are fenced by a longer run; in a table, `|` is
    escaped (GFM splits cells before it parses code spans)."""
    flat = " ".join(terminal_safe(str(value)).split())
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    if longest or flat.startswith(" ") or flat.endswith(" "):
        flat = f" {flat} "
    if in_table:
        flat = flat.replace("|", "\\|")
    return f"{fence}{flat}{fence}"


def _fenced(body: str, info: str) -> list[str]:
    body = terminal_safe(body)
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", *body.rstrip("\n").splitlines(), fence]


def render(plan: Plan) -> str:
    """The plan as a Markdown document, ending with a newline."""
    lines: list[str] = [
        f"### kmsplan plan: stack {code(plan.stack)}, account {code(plan.account_id)}, "
        f"{code(plan.region)}",
        "",
        _summary(plan),
        "",
    ]
    if plan.blocked:
        count = len(plan.blocked)
        lines += [
            f"> **Blocked:** the safety gate blocks {count} change{'s' if count != 1 else ''}; "
            "`kmsplan apply` refuses this whole plan until "
            f"{'it is' if count == 1 else 'they are'} unblocked (see below).",
            "",
        ]
    if plan.changes:
        lines += _changes_table(plan)
        lines += _details(plan)
    if plan.blocked:
        lines += _blocked(plan)
    lines += _policies(plan)
    lines += _findings(plan)
    lines += _cost(plan)
    lines += _notes(plan)
    footer = f"plan format {plan.format_version}"
    if plan.kmsplan_version:
        footer = f"kmsplan {plan.kmsplan_version}, {footer}"
    lines.append(f"_{text(footer)}_")
    return "\n".join(lines) + "\n"


def _summary(plan: Plan) -> str:
    counts, cost = summary_sentences(plan)
    return f"**{text(counts)}** {text(cost)}" if cost else f"**{text(counts)}**"


def _changes_table(plan: Plan) -> list[str]:
    used = {symbol(c) for c in plan.changes}
    legend = ", ".join(f"{code(s)} {text(m)}" for s, m in LEGEND.items() if s in used)
    lines = [
        "| | Change | Action | What changes | Gate |",
        "|:-:|---|---|---|---|",
    ]
    for change in plan.changes:
        gate = (
            "**blocked**: " + ", ".join(code(b.rule, in_table=True) for b in change.blocked)
            if change.is_blocked
            else "allowed"
        )
        lines.append(
            f"| {code(symbol(change), in_table=True)} | {code(change.address, in_table=True)} "
            f"| {_action_word(change)} | {_what_changes(change)} | {gate} |"
        )
    return [*lines, "", f"Symbols: {legend}. Changes are listed in apply order.", ""]


def _action_word(change: Change) -> str:
    return words(change).word


def _what_changes(change: Change) -> str:
    parts: list[str] = []
    if change.attributes:
        parts.append(", ".join(code(a.name, in_table=True) for a in change.attributes))
    if change.reason:
        parts.append(text(change.reason, in_table=True))
    return " — ".join(parts)


def _details(plan: Plan) -> list[str]:
    """Every fact the text plan shows of each change, for reviewers who read only the PR
    comment: the values each attribute has, had or gets (a grant's grantee, operations and
    constraints; a key's settings), the order and the exact calls. Long values fold."""
    lines = ["#### Changes in detail", ""]
    for change in plan.changes:
        skip = frozenset({"policy"}) if change.policy_diff is not None else frozenset()
        lines.append(f"**{code(change.address)}** ({_action_word(change)})")
        lines.append("")
        for row in attribute_rows(change, skip):
            lines += _row(row)
        if change.depends_on:
            lines.append("- after: " + ", ".join(code(a) for a in change.depends_on))
        if change.calls:
            lines.append("- calls: " + ", ".join(code(call.operation) for call in change.calls))
        lines.append("")
    if len(plan.changes) <= FOLD_DETAILS_CHANGES:
        return lines
    # A long plan: the table above is the overview; the details fold under it.
    return ["<details><summary>Changes in detail</summary>", "", *lines[2:], "</details>", ""]


def _row(row: Row) -> list[str]:
    name = code(row.name)
    if row.sign == "~":
        before, after = format_value(row.before), format_value(row.after)
        if len(before) + len(after) <= LONG_VALUE:
            return [f"- {name}: {code(before)} → {code(after)}"]
        return [
            f"- {name}: changes",
            *_folded("before", before),
            *_folded("after", after),
        ]
    value = format_value(row.after if row.sign == "+" else row.before)
    if len(value) <= LONG_VALUE:
        return [f"- {name}: {code(value)}"]
    return [f"- {name}:", *_folded(row.name, value)]


def _folded(summary: str, value: str) -> list[str]:
    return [
        "",
        f"  <details><summary>{text(summary)}</summary>",
        "",
        *(f"  {line}" for line in _fenced(value, "json")),
        "",
        "  </details>",
        "",
    ]


def _blocked(plan: Plan) -> list[str]:
    lines = ["#### Blocked by the safety gate", ""]
    for change in plan.blocked:
        lines.append(f"**{code(change.address)}** ({_action_word(change)})")
        lines.append("")
        for block in change.blocked:
            reason, unblock = text(block.reason), text(block.unblock)
            lines.append(f"- {code(block.rule)}: {reason}. **To unblock:** {unblock}.")
        lines.append("")
    return lines


def _policies(plan: Plan) -> list[str]:
    with_policy = [c for c in plan.changes if c.policy_diff is not None]
    if not with_policy:
        return []
    lines = ["#### Key policy changes", ""]
    for change in with_policy:
        assert change.policy_diff is not None
        lines += _policy(change, change.policy_diff, plan.account_id)
    return lines


def _policy(change: Change, policy_diff: Mapping[str, Any], account_id: str) -> list[str]:
    lines = [f"**{code(change.address)}**: {text(policy_headline(policy_diff))}", ""]
    access = access_lines(policy_diff, account_id)
    if access:
        lines += [
            f"- {code(principal)} **{verb}** " + ", ".join(code(action) for action in actions)
            for principal, verb, actions in access
        ]
        lines.append("")
    unified = str(policy_diff.get("unified") or "")
    if unified.strip():
        block = _fenced(unified, "diff")
        if len(block) > FOLD_DIFF_LINES:
            lines += [
                "<details><summary>Policy diff</summary>",
                "",
                *block,
                "",
                "</details>",
            ]
        else:
            lines += block
        lines.append("")
    return lines


def _findings(plan: Plan) -> list[str]:
    if not plan.findings:
        return []
    lines = [
        "#### Lint findings",
        "",
        "| Severity | Rule | Key | Where | Finding |",
        "|---|---|---|---|---|",
    ]
    for finding in plan.findings:
        severity = text(finding.severity.value, in_table=True)
        if finding.suppressed:
            severity += " (suppressed)"
        elif finding.severity is Severity.ERROR:
            severity = f"**{severity}**"
        where = finding_location(finding)
        title = text(finding.title, in_table=True)
        message = text(finding.message, in_table=True)
        lines.append(
            f"| {severity} | {code(finding.rule, in_table=True)} "
            f"| {code(finding.key, in_table=True)} "
            f"| {code(where, in_table=True) if where else ''} "
            f"| {title}: {message} |"
        )
    lines.append("")
    return lines


def _cost(plan: Plan) -> list[str]:
    if not plan.cost:
        return []
    lines = ["#### Monthly cost", ""]
    lines += [
        f"- {text(format_usd(line.monthly_usd))}: {text(line.description)}" for line in plan.cost
    ]
    return [*lines, ""]


def _notes(plan: Plan) -> list[str]:
    lines: list[str] = []
    if plan.unmanaged:
        lines += ["#### Unmanaged (read only: kmsplan never changes these)", ""]
        lines += [f"- {text(note)}" for note in plan.unmanaged]
        lines.append("")
    if plan.warnings:
        lines += ["#### Warnings", ""]
        lines += [f"- {text(warning)}" for warning in plan.warnings]
        lines.append("")
    return lines
