"""What the text and markdown renderers share: action symbols, how values and principals are
shown, and how a policy diff is summarized."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kmsplan.lint.finding import Finding
from kmsplan.plan.actions import BLOCKED_SYMBOL, Words, legend, words_for
from kmsplan.plan.types import Action, Change, is_ref
from kmsplan.render.terminal import one_line, terminal_safe

__all__ = ["one_line", "terminal_safe"]

# Symbol -> meaning, from the one action table (kmsplan.plan.actions).
LEGEND: Mapping[str, str] = legend()


def symbol(change: Change) -> str:
    return BLOCKED_SYMBOL if change.is_blocked else change.action.symbol


def words(change: Change) -> Words:
    """How `change` is said: its action's words, or its resource's or step's own."""
    return words_for(change.action, change.address)


def format_value(value: Any) -> str:
    """One attribute value on one line: JSON, except that a reference to a key created by this
    plan reads as Terraform's "known after apply"."""
    if is_ref(value):
        return f"(known after apply: {value['$ref']})"
    if isinstance(value, Mapping) and "Statement" in value:
        count = len(_statements(value))
        return f"(policy document, {count} statement{'s' if count != 1 else ''})"
    return json.dumps(_plain(value), ensure_ascii=False, separators=(", ", ": "))


def _statements(policy: Mapping[str, Any]) -> list[Any]:
    statements = policy.get("Statement")
    if isinstance(statements, list):
        return statements
    return [statements] if statements else []


def _plain(value: Any) -> Any:
    if is_ref(value):
        return f"(known after apply: {value['$ref']})"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Row:
    """One attribute line of a change, as both the text and the markdown plan show it."""

    sign: str  # "+" set on a new object, "-" on a removed one, "~" changed
    name: str  # dotted: "rotation.period_days", "tags.team"
    before: Any
    after: Any

    @property
    def shown(self) -> str:
        if self.sign == "+":
            return format_value(self.after)
        if self.sign == "-":
            return format_value(self.before)
        return f"{format_value(self.before)} → {format_value(self.after)}"


def attribute_rows(change: Change, skip: frozenset[str] = frozenset()) -> list[Row]:
    """Every attribute fact of `change`: what a created object will have, what a deleted one
    had, what an update changes (in that order), except the names in `skip`."""
    rows: list[Row] = []
    if change.action is Action.CREATE:
        rows = [Row("+", name, None, v) for name, v in _worth_a_line(change.after, skip)]
    elif change.action is Action.DELETE:
        rows = [Row("-", name, v, None) for name, v in _worth_a_line(change.before, skip)]
    rows += [Row("~", a.name, a.before, a.after) for a in change.attributes if a.name not in skip]
    return rows


def _worth_a_line(
    attributes: Mapping[str, Any] | None, skip: frozenset[str]
) -> list[tuple[str, Any]]:
    """The attributes of a created or deleted object worth a line: an unset value (null, no
    tags, no aliases) says nothing about the object. `false`, 0 and "" stay: they are values."""
    return [
        (name, value)
        for name, value in flatten(attributes, skip=skip)
        if value is not None and value != {} and value != []
    ]


def flatten(
    attributes: Mapping[str, Any] | None, *, skip: frozenset[str] = frozenset()
) -> list[tuple[str, Any]]:
    """Nested attribute dicts as dotted names ("rotation.period_days"); lists, references and
    policy documents stay whole."""
    return list(_flatten(attributes or {}, "", skip))


def _flatten(
    value: Mapping[str, Any], prefix: str, skip: frozenset[str]
) -> Iterator[tuple[str, Any]]:
    for name, item in value.items():
        dotted = f"{prefix}{name}"
        if dotted in skip:
            continue
        # One level only: "tags.team", "rotation.period_days"; deeper maps (an encryption
        # context inside grant constraints) read better whole.
        if (
            not prefix
            and isinstance(item, Mapping)
            and item
            and not is_ref(item)
            and "Statement" not in item
        ):
            yield from _flatten(item, f"{dotted}.", skip)
        else:
            yield dotted, item


_SAME_ACCOUNT_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):(?P<rest>(role|user)/.+)$"
)


def short_principal(principal: str, account_id: str) -> str:
    """`role/x` for a role or user of the plan's own account; every other principal in full,
    so that access from other accounts stands out."""
    match = _SAME_ACCOUNT_ARN.match(principal)
    if match and match.group("account") == account_id:
        return match.group("rest")
    return principal


def policy_headline(policy_diff: Mapping[str, Any]) -> str:
    """ "2 statements added, 1 modified" — what the statement-level diff amounts to."""
    if policy_diff.get("label_only"):
        return "statement labels (Sid) only; access unchanged"
    counts: dict[str, int] = {}
    for statement in policy_diff.get("statements") or ():
        change = str(statement.get("change", ""))
        if change and change != "unchanged":
            counts[change] = counts.get(change, 0) + 1
    order = [
        "added",
        "modified",
        "removed",
        *sorted(set(counts) - {"added", "modified", "removed"}),
    ]
    parts = [f"{counts[change]} {change}" for change in order if counts.get(change)]
    if not parts:
        return "no statement changes"
    # "1 statement added, 2 modified": the noun goes with the first count only.
    first_count, first_change = parts[0].split(" ", 1)
    noun = "statement" if first_count == "1" else "statements"
    return ", ".join([f"{first_count} {noun} {first_change}", *parts[1:]])


def access_lines(
    policy_diff: Mapping[str, Any], account_id: str
) -> list[tuple[str, str, list[str]]]:
    """(principal, "gains"|"loses", actions) for each principal whose access changes."""
    lines: list[tuple[str, str, list[str]]] = []
    for entry in policy_diff.get("access") or ():
        principal = short_principal(str(entry.get("principal", "")), account_id)
        for verb, member in (("gains", "gained"), ("loses", "lost")):
            actions = [str(a) for a in entry.get(member) or ()]
            if actions:
                lines.append((principal, verb, actions))
    return lines


def finding_location(finding: Finding) -> str:
    location = finding.location
    if location is not None and location.file:
        return f"{location.file}:{location.line}:{location.column}"
    return finding.path
