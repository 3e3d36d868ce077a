"""Canonical key policy documents and semantic equivalence.

Two policies are *equivalent* when KMS and IAM grant exactly the same access under them. The
canonical form built here makes that a plain equality test: every value is parsed into its
canonical spelling (see `kmsplan.policy.document`), every list is sorted and de-duplicated,
and statements are sorted by their content.

Labels: ``Sid`` and ``Id`` name statements and documents but grant nothing, so `equivalent`
ignores them (and statement order). A user who renames a Sid still expects kmsplan to push the
new name, so labels are not thrown away: `normalize` keeps them by default, and
`differs_only_in_labels` tells the differ that two documents differ *only* in labels — an
update to plan, marked as changing no access.

Equivalence is sound but deliberately not complete: documents that mean the same only after
restructuring statements (one statement split into two, ``kms:*`` versus the list of every
KMS action) are reported as different. kmsplan then pushes the desired document once and the
next plan is clean, so the cost is one visible, harmless update; the opposite mistake (calling
two different policies equivalent) would hide an access change, which must never happen.
"""

from __future__ import annotations

import json
from typing import Any

from kmsplan.policy.document import PolicyInput, Statement, parse_pair, parse_policy


def statement_json(statement: Statement, *, labels: bool = True) -> dict[str, Any]:
    """The canonical JSON shape of one statement: AWS element names in the usual order, lists
    everywhere (sorted), principals as objects, conditions as ``{operator: {key: [values]}}``.
    With ``labels=False`` the Sid is left out."""
    out: dict[str, Any] = {}
    if labels and statement.sid is not None:
        out["Sid"] = statement.sid
    out["Effect"] = statement.effect
    if statement.principals is not None:
        out["Principal"] = statement.principals.to_json()
    if statement.not_principals is not None:
        out["NotPrincipal"] = statement.not_principals.to_json()
    for element, values in (
        ("Action", statement.actions),
        ("NotAction", statement.not_actions),
        ("Resource", statement.resources),
        ("NotResource", statement.not_resources),
    ):
        if values is not None:
            out[element] = sorted(values)
    if statement.conditions:
        conditions: dict[str, dict[str, list[str]]] = {}
        for condition in sorted(statement.conditions, key=lambda c: (c.operator, c.key)):
            conditions.setdefault(condition.operator, {})[condition.key] = sorted(condition.values)
        out["Condition"] = conditions
    return out


def canonical_text(value: object) -> str:
    """Stable JSON text of a JSON-shaped value: for sorting, hashing and equality."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalize(
    doc: PolicyInput, *, labels: bool = True, partition: str | None = None
) -> dict[str, Any]:
    """The canonical JSON-shaped document: ``Version`` always present, statements sorted by
    content (then Sid) with exact duplicates removed, every element canonical. Idempotent,
    and stable for hashing (through `canonical_text`).

    ``labels=False`` drops Sid and Id, giving the document's meaning only: two policies are
    equivalent exactly when their ``labels=False`` forms are equal (for the same partition).
    """
    policy = parse_policy(doc, partition=partition)
    keyed: dict[str, dict[str, Any]] = {}
    for statement in policy.statements:
        body = statement_json(statement, labels=labels)
        meaning = canonical_text(statement_json(statement, labels=False))
        keyed.setdefault(f"{meaning}\x00{statement.sid or ''}" if labels else meaning, body)
    out: dict[str, Any] = {"Version": policy.version}
    if labels and policy.id is not None:
        out["Id"] = policy.id
    out["Statement"] = [keyed[k] for k in sorted(keyed)]
    return out


def equivalent(a: PolicyInput, b: PolicyInput, *, partition: str | None = None) -> bool:
    """Whether two policies grant the same access (Sid, Id and statement order ignored).
    Invalid documents raise PolicyError."""
    first, second = parse_pair(a, b, partition=partition)
    return first.meaning == second.meaning


def differs_only_in_labels(a: PolicyInput, b: PolicyInput, *, partition: str | None = None) -> bool:
    """True when the policies are equivalent but their Sids or Id differ: an update worth
    making (the user renamed something) that changes no access. False when they are equal
    in every respect that matters, and False when their meaning differs."""
    first, second = parse_pair(a, b, partition=partition)
    return first.meaning == second.meaning and first.labelled_meaning != second.labelled_meaning
