"""Statement-level policy diffs and access summaries, as JSON-shaped data for renderers.

`policy_diff` matches statements by Sid (statements without one, and statements whose Sid
was renamed, by their meaning), shows each one's normalized form before and after, a readable
unified diff of the pretty-printed statements, and an access summary: which principals gain or
lose which KMS actions.

The access summary is an explanation, not an IAM simulator. Per principal named in the policy
it takes the KMS actions its Allow statements grant (wildcards and NotAction expanded against
the list of KMS actions), removes those an unconditional Deny takes away, and marks what only
conditional statements grant (or a conditional Deny may take away) as ``"<action>
(conditional)"``. An Allow to the account root is reported for the root ARN: in a key policy it
delegates to the account's IAM policies.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kmsplan.policy.document import (
    KMS_ACTIONS,
    Policy,
    Statement,
    parse_pair,
    parse_policy,
)
from kmsplan.policy.normalize import canonical_text, statement_json

CONDITIONAL = " (conditional)"
_INDENT = "    "  # statements sit inside "Statement": [ ... ]
# Show "kms:* except ..." instead of listing nearly every KMS action.
_MAX_EXCEPTIONS = 5


def policy_diff(
    before: Mapping[str, Any] | str | None,
    after: Mapping[str, Any] | str,
    *,
    before_label: str = "before",
    after_label: str = "after",
) -> dict[str, Any]:
    """Compare two key policies (``before`` None: the key has no policy yet).

    Returns::

        {"equivalent": bool,   # same access (Sid, Id and statement order ignored)
         "label_only": bool,   # they differ, but only in Sid/Id (and order): no access change
         "version": {"before": str | None, "after": str},
         "statements": [{"sid": str, "change": "added"|"removed"|"modified"|"unchanged",
                         "before": {...} | None, "after": {...} | None}],
         "unified": str,       # +/- lines of the pretty-printed normalized statements
         "access": [{"principal": str, "gained": [str], "lost": [str]}]}

    Invalid documents raise PolicyError.
    """
    before_policy: Policy | None
    if before is None:
        before_policy, after_policy = None, parse_policy(after)
    else:
        before_policy, after_policy = parse_pair(before, after)

    pairs = _match_statements(
        () if before_policy is None else before_policy.statements, after_policy.statements
    )
    statements = [_entry(b, a) for b, a in pairs]
    equivalent = before_policy is not None and before_policy.meaning == after_policy.meaning
    labels_differ = before_policy is not None and (
        before_policy.id != after_policy.id or any(s["change"] != "unchanged" for s in statements)
    )
    return {
        "equivalent": equivalent,
        "label_only": equivalent and labels_differ,
        "version": {
            "before": None if before_policy is None else before_policy.version,
            "after": after_policy.version,
        },
        "statements": statements,
        "unified": _unified(
            before_policy,
            after_policy,
            statements,
            before_label=before_label,
            after_label=after_label,
        ),
        "access": access_summary(before_policy, after_policy),
    }


def access_summary(before: Policy | None, after: Policy) -> list[dict[str, Any]]:
    """Per principal, the KMS actions gained and lost from `before` to `after` (only principals
    whose access changes), sorted by principal."""
    old = _access(before) if before is not None else {}
    new = _access(after)
    out: list[dict[str, Any]] = []
    for principal in sorted(set(old) | set(new)):
        was, now = old.get(principal, {}), new.get(principal, {})
        gained = _describe_actions(now, was)
        lost = _describe_actions(was, now)
        if gained or lost:
            out.append({"principal": principal, "gained": gained, "lost": lost})
    return out


# ---------------------------------------------------------------------------------------------
# Matching statements


def _match_statements(
    before: Iterable[Statement], after: Iterable[Statement]
) -> list[tuple[Statement | None, Statement | None]]:
    """Pairs (before, after): by Sid first, then leftovers by meaning (a renamed Sid, or a
    statement without one); what is still unmatched was removed or added. Order: the after
    document's order, removed statements last in their original order."""
    left = list(before)
    after_list = list(after)
    matched: dict[int, Statement] = {}  # after index -> its before statement

    def take(after_statement: Statement, same: Callable[[Statement], bool]) -> None:
        for i, candidate in enumerate(left):
            if same(candidate):
                matched[after_statement.index] = left.pop(i)
                return

    for statement in after_list:
        if statement.sid:
            take(statement, _same_sid(statement.sid))
    for statement in after_list:
        if statement.index not in matched:
            take(statement, _same_meaning(_meaning_text(statement)))
    out: list[tuple[Statement | None, Statement | None]] = [
        (matched.get(s.index), s) for s in after_list
    ]
    out.extend((b, None) for b in left)
    return out


def _same_sid(sid: str) -> Callable[[Statement], bool]:
    return lambda statement: statement.sid == sid


def _same_meaning(meaning: str) -> Callable[[Statement], bool]:
    return lambda statement: _meaning_text(statement) == meaning


def _meaning_text(statement: Statement) -> str:
    return canonical_text(statement_json(statement, labels=False))


def _entry(before: Statement | None, after: Statement | None) -> dict[str, Any]:
    before_json = None if before is None else statement_json(before)
    after_json = None if after is None else statement_json(after)
    if before_json is None:
        change = "added"
    elif after_json is None:
        change = "removed"
    elif before_json == after_json:
        change = "unchanged"
    else:
        change = "modified"
    named = after if after is not None else before
    return {
        "sid": (named.sid if named is not None else None) or "",
        "change": change,
        "before": before_json,
        "after": after_json,
    }


# ---------------------------------------------------------------------------------------------
# The unified diff


def _pretty(statement: Mapping[str, Any] | None) -> list[str]:
    if statement is None:
        return []
    return [_INDENT + line for line in _json_lines(statement)]


def _json_lines(value: Any, indent: str = "") -> list[str]:
    """Pretty JSON, two-space indent, like ``json.dumps(indent=2)`` except that a list of one
    string stays on one line: the canonical form makes every value a list, and three lines
    per ``"Resource": ["*"]`` would bury the change in noise."""
    inner = indent + "  "
    if isinstance(value, Mapping) and value:
        lines = ["{"]
        items = list(value.items())
        for n, (key, item) in enumerate(items):
            body = _json_lines(item, inner)
            body[0] = f"{inner}{json.dumps(key, ensure_ascii=False)}: {body[0].lstrip()}"
            if n < len(items) - 1:
                body[-1] += ","
            lines.extend(body)
        lines.append(indent + "}")
        return lines
    if isinstance(value, list) and len(value) > 1:
        lines = ["["]
        for n, item in enumerate(value):
            body = _json_lines(item, inner)
            body[0] = inner + body[0].lstrip()
            if n < len(value) - 1:
                body[-1] += ","
            lines.extend(body)
        lines.append(indent + "]")
        return lines
    return [json.dumps(value, ensure_ascii=False)]


def _unified(
    before: Policy | None,
    after: Policy,
    statements: list[dict[str, Any]],
    *,
    before_label: str,
    after_label: str,
) -> str:
    lines = [f"--- {before_label}", f"+++ {after_label}", " {"]
    if before is None or before.version != after.version:
        if before is not None:
            lines.append(f'-  "Version": {json.dumps(before.version)},')
        lines.append(f'+  "Version": {json.dumps(after.version)},')
    else:
        lines.append(f'   "Version": {json.dumps(after.version)},')
    before_id = None if before is None else before.id
    if before_id == after.id:
        if after.id is not None:
            lines.append(f'   "Id": {json.dumps(after.id)},')
    else:
        if before_id is not None:
            lines.append(f'-  "Id": {json.dumps(before_id)},')
        if after.id is not None:
            lines.append(f'+  "Id": {json.dumps(after.id)},')
    lines.append('   "Statement": [')
    for entry in statements:
        change = entry["change"]
        if change == "unchanged":
            name = f'Sid "{entry["sid"]}"' if entry["sid"] else "statement without Sid"
            lines.append(f" {_INDENT}... unchanged: {name}")
        elif change == "added":
            lines.extend("+" + line for line in _pretty(entry["after"]))
        elif change == "removed":
            lines.extend("-" + line for line in _pretty(entry["before"]))
        else:
            lines.extend(_line_diff(_pretty(entry["before"]), _pretty(entry["after"])))
    lines.extend(["   ]", " }"])
    return "\n".join(lines) + "\n"


def _line_diff(old: list[str], new: list[str]) -> list[str]:
    """Every line of a modified statement, marked ' ', '-' or '+' (full context: a statement
    is short and its unchanged lines say what the change applies to)."""
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(" " + line for line in old[i1:i2])
            continue
        out.extend("-" + line for line in old[i1:i2])
        out.extend("+" + line for line in new[j1:j2])
    return out


# ---------------------------------------------------------------------------------------------
# The access summary

# principal label -> KMS action -> granted only conditionally?
_Access = dict[str, dict[str, bool]]


def _access(policy: Policy) -> _Access:
    access: _Access = {}
    allows = [s for s in policy.statements if s.effect == "Allow" and s.applies_to_any_resource()]
    denies = [s for s in policy.statements if s.effect == "Deny" and s.applies_to_any_resource()]
    for statement in allows:
        actions = _actions_of(statement)
        for principal in _principal_labels(statement):
            granted = access.setdefault(principal, {})
            for action in actions:
                # An unconditional grant anywhere outweighs a conditional one.
                granted[action] = granted.get(action, True) and statement.is_conditional
    for statement in denies:
        actions = _actions_of(statement)
        for principal, granted in access.items():
            if not _deny_applies(statement, principal):
                continue
            for action in actions & set(granted):
                if statement.is_conditional:
                    granted[action] = True
                else:
                    del granted[action]
    return access


def _actions_of(statement: Statement) -> set[str]:
    """The KMS actions a statement applies to, plus any non-KMS action patterns it names
    literally (they cannot be expanded, but a change to them is still a change)."""
    actions = {a for a in KMS_ACTIONS if statement.matches_action(a)}
    if statement.actions is not None:
        actions.update(a for a in statement.actions if a != "*" and not a.startswith("kms:"))
    return actions


def _principal_labels(statement: Statement) -> list[str]:
    if statement.principals is not None:
        return list(statement.principals.labels())
    if statement.not_principals is not None:
        excluded = ", ".join(statement.not_principals.labels())
        return [f"* except {excluded}"]
    return []


def _deny_applies(statement: Statement, principal: str) -> bool:
    if statement.principals is not None:
        if statement.principals.is_public:
            return True
        return principal in statement.principals.labels()
    if statement.not_principals is not None:
        return principal not in statement.not_principals.labels()
    return False


def _describe_actions(have: Mapping[str, bool], other: Mapping[str, bool]) -> list[str]:
    """What `have` grants that `other` does not, as sorted readable strings; an action that
    turns from conditional to unconditional is gained as itself and lost as conditional."""
    unconditional = {a for a, cond in have.items() if not cond and other.get(a) is not False}
    conditional = {a for a, cond in have.items() if cond and other.get(a) is not True}
    return _compress(unconditional) + [a + CONDITIONAL for a in _compress(conditional)]


def _compress(actions: set[str]) -> list[str]:
    kms = set(KMS_ACTIONS)
    listed = sorted(actions - kms)
    present = actions & kms
    missing = kms - present
    if not missing:
        return ["kms:*", *listed]
    if len(missing) <= _MAX_EXCEPTIONS and len(present) > len(missing):
        return [f"kms:* except {', '.join(sorted(missing))}", *listed]
    return sorted(present) + listed
