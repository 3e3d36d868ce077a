"""KMS012: a grant lets its grantee create or retire grants."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.facts import grant_path
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.model import Key

_CONSEQUENCES = {
    "CreateGrant": "the grantee can create further grants and pass its access on without a "
    "policy change",
    "RetireGrant": "the grantee can retire grants",
}


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    for grant in key.grants:
        risky = [op for op in _CONSEQUENCES if op in grant.operations]
        if not risky:
            continue
        yield Violation(
            path=f"{grant_path(key, grant)}.operations",
            message=(
                f"grant {grant.name!r} to {grant.grantee} includes {' and '.join(risky)}: "
                + "; ".join(_CONSEQUENCES[op] for op in risky)
            ),
        )


RULE = Rule(
    id="KMS012",
    name="GrantAllowsGrantManagement",
    title="Grant includes CreateGrant or RetireGrant",
    severity=Severity.WARNING,
    rationale=(
        "A grant with the CreateGrant operation lets the grantee create further grants with "
        "the same or fewer operations, for any principal, so access spreads without any "
        "reviewed change. RetireGrant in a grant lets the grantee retire it (and so is rarely "
        "what is meant)."
    ),
    fix=(
        "Remove CreateGrant and RetireGrant from the grant's operations; declare each grant "
        "the workload needs in the manifest, and set `retiring_principal` when another "
        "principal must be able to retire it."
    ),
    tags=("security", "grants"),
    detect=detect,
)
