"""The shape of a key policy document, as KMS will judge it: elements, statements, sizes and
characters. Whether a policy is *wise* is for `kmsplan lint`; this only rejects what KMS would
reject or silently misread (a misspelled `Condition` would otherwise widen access)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from kmsplan import kmsspec
from kmsplan.manifest.schema import kind_of
from kmsplan.manifest.source import DocPath, iter_strings
from kmsplan.manifest.variables import substitute
from kmsplan.policy.document import (
    EFFECTS,
    POLICY_ELEMENTS,
    PRINCIPAL_TYPES,
    STATEMENT_ELEMENTS,
)

# report(path, message, allowed, at_key)
Report = Callable[[DocPath, str, str, bool], None]


def _unknown(name: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return "one of: " + ", ".join(known) + hint


def _strings(value: Any) -> bool:
    """A string, or a non-empty list of strings."""
    if isinstance(value, str):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _check_principal(value: Any, path: DocPath, report: Report) -> None:
    if value == "*":
        return
    if not isinstance(value, dict) or not value:
        report(
            path,
            f'expected "*" or a mapping of principal types, got {kind_of(value)}',
            "for example {AWS: arn:aws:iam::${account_id}:root}",
            False,
        )
        return
    for ptype, principals in value.items():
        if ptype not in PRINCIPAL_TYPES:
            report(
                (*path, ptype),
                f'unknown principal type "{ptype}"',
                _unknown(ptype, PRINCIPAL_TYPES),
                True,
            )
        elif not _strings(principals):
            report(
                (*path, ptype),
                f"expected a string or a list of strings, got {kind_of(principals)}",
                'principal ARNs, account ids or "*"',
                False,
            )


def _check_condition(value: Any, path: DocPath, report: Report) -> None:
    if not isinstance(value, dict):
        report(
            path,
            f"expected a mapping of condition operators, got {kind_of(value)}",
            "for example {StringEquals: {kms:CallerAccount: ${account_id}}}",
            False,
        )
        return
    for operator, tests in value.items():
        if not isinstance(tests, dict) or not tests:
            report(
                (*path, operator),
                f"expected a mapping of condition keys, got {kind_of(tests)}",
                "condition key: value or list of values",
                False,
            )
            continue
        for cond_key, cond_value in tests.items():
            items = cond_value if isinstance(cond_value, list) else [cond_value]
            if not items or not all(isinstance(i, (str, bool, int, float)) for i in items):
                report(
                    (*path, operator, cond_key),
                    f"expected a value or a list of values, got {kind_of(cond_value)}",
                    "strings, numbers or booleans",
                    False,
                )


def _check_statement(statement: Any, path: DocPath, report: Report) -> None:
    if not isinstance(statement, dict):
        report(
            path,
            f"a statement must be a mapping, got {kind_of(statement)}",
            "Effect, Principal, Action, Resource and optional Sid, Condition",
            False,
        )
        return
    for element in statement:
        if element not in STATEMENT_ELEMENTS:
            report(
                (*path, element),
                f'unknown statement element "{element}"',
                _unknown(element, STATEMENT_ELEMENTS),
                True,
            )
    if "Sid" in statement and not isinstance(statement["Sid"], str):
        report((*path, "Sid"), f"expected a string, got {kind_of(statement['Sid'])}", "", False)
    effect = statement.get("Effect")
    if effect is None:
        report(path, 'statement has no "Effect"', "Effect: Allow or Effect: Deny", False)
    elif effect not in EFFECTS:
        report(
            (*path, "Effect"), f"{json.dumps(effect)} is not a valid effect", "Allow or Deny", False
        )
    for pair, needed in (
        (("Principal", "NotPrincipal"), "KMS requires a principal in every key policy statement"),
        (("Action", "NotAction"), "a statement without actions has no effect"),
        (("Resource", "NotResource"), 'in a key policy, Resource: "*" means this key'),
    ):
        present = [p for p in pair if p in statement]
        if not present:
            report(path, f'statement has no "{pair[0]}" or "{pair[1]}"', needed, False)
        elif len(present) == 2:
            report(
                (*path, pair[1]),
                f'statement has both "{pair[0]}" and "{pair[1]}"',
                "one of the two",
                True,
            )
    for element in ("Principal", "NotPrincipal"):
        if element in statement:
            _check_principal(statement[element], (*path, element), report)
    for element in ("Action", "NotAction", "Resource", "NotResource"):
        if element in statement and not _strings(statement[element]):
            report(
                (*path, element),
                f"expected a string or a non-empty list of strings, got "
                f"{kind_of(statement[element])}",
                "",
                False,
            )
    if "Condition" in statement:
        _check_condition(statement["Condition"], (*path, "Condition"), report)


def check_policy(
    policy: dict[str, Any],
    path: DocPath,
    report: Report,
    *,
    placeholders: Mapping[str, str] | None = None,
) -> None:
    """Report every shape, size and character problem of a key policy document.

    The size is measured with `placeholders` filled in for the variables not known yet, so it
    is close to what KMS will see.
    """
    for element in policy:
        if element not in POLICY_ELEMENTS:
            report(
                (*path, element),
                f'unknown policy element "{element}"',
                _unknown(element, POLICY_ELEMENTS),
                True,
            )
    version = policy.get("Version")
    if version is None:
        report(path, 'policy has no "Version"', f'"{kmsspec.POLICY_VERSION_CURRENT}"', False)
    elif version not in kmsspec.POLICY_VERSIONS:
        report(
            (*path, "Version"),
            f"{json.dumps(version)} is not a policy language version",
            " or ".join(f'"{v}"' for v in kmsspec.POLICY_VERSIONS),
            False,
        )
    if "Id" in policy and not isinstance(policy["Id"], str):
        report((*path, "Id"), f"expected a string, got {kind_of(policy['Id'])}", "", False)
    statements = policy.get("Statement")
    if statements is None:
        report(path, 'policy has no "Statement"', "a statement or a list of statements", False)
    elif isinstance(statements, dict):
        _check_statement(statements, (*path, "Statement"), report)
    elif isinstance(statements, list):
        if not statements:
            report((*path, "Statement"), "policy has no statements", "at least one", False)
        for index, statement in enumerate(statements):
            _check_statement(statement, (*path, "Statement", index), report)
    else:
        report(
            (*path, "Statement"),
            f"expected a list of statements, got {kind_of(statements)}",
            "a statement or a list of statements",
            False,
        )

    compact = _compact(policy)
    # Every character outside U+0020..U+00FF shows in the JSON text as itself or, escaped,
    # behind a backslash: text without either has no string to look at one by one.
    if _SUSPECT_CHARACTER.search(compact) is not None:
        for at, text, _is_key in iter_strings(policy, path):
            bad = next((ch for ch in text if not kmsspec.is_policy_character(ch)), None)
            if bad is not None:
                shown = json.dumps(bad, ensure_ascii=False)
                report(
                    at,
                    f"contains the character {shown} (U+{ord(bad):04X})",
                    "tab, newline, carriage return and characters U+0020 to U+00FF",
                    False,
                )
    size = _oversize(policy, compact, placeholders)
    if size is not None:
        report(
            path,
            f"policy is {size} bytes as compact JSON",
            f"at most {kmsspec.POLICY_MAX_BYTES} bytes",
            False,
        )


_SUSPECT_CHARACTER = re.compile(r"[^\x20-\x5b\x5d-\xff]")  # all but U+0020..U+00FF, or "\\"


def _compact(policy: dict[str, Any]) -> str:
    return json.dumps(policy, separators=(",", ":"), ensure_ascii=False)


def _oversize(
    policy: dict[str, Any], compact: str, placeholders: Mapping[str, str] | None
) -> int | None:
    """The policy's size with `placeholders` filled in, if that is over the KMS limit."""
    size = len(compact.encode("utf-8"))
    references = compact.count("${")
    if placeholders is not None and references:
        # Each filled reference grows the text by less than its value's JSON text: when even
        # that bound fits, filling them in to measure exactly is not needed.
        growth = max(
            (len(json.dumps(v, ensure_ascii=False).encode("utf-8")) for v in placeholders.values()),
            default=0,
        )
        if size + references * growth > kmsspec.POLICY_MAX_BYTES:
            size = policy_size(
                substitute(policy, placeholders, path=(), in_policy=True, problems=[])
            )
    return size if size > kmsspec.POLICY_MAX_BYTES else None


def policy_size(policy: dict[str, Any]) -> int:
    """Bytes of the compact JSON text kmsplan sends to KMS."""
    return len(_compact(policy).encode("utf-8"))
