"""KMS013: a grant on a symmetric encryption key has no encryption context constraint."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.kmsspec import grant_constraints_allowed
from kmsplan.lint.facts import grant_path
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    if not grant_constraints_allowed(key.spec, key.usage):
        return  # KMS rejects constraints on asymmetric and HMAC keys
    for grant in key.grants:
        if grant.constraints is not None and (
            grant.constraints.encryption_context_equals
            or grant.constraints.encryption_context_subset
        ):
            continue
        yield Violation(
            path=grant_path(key, grant),
            message=(
                f"grant {grant.name!r} to {grant.grantee} has no encryption context "
                f"constraint: it allows {', '.join(grant.operations)} on any data under "
                f"key {key.name!r}"
            ),
        )


RULE = Rule(
    id="KMS013",
    name="GrantWithoutConstraint",
    title="Grant has no encryption context constraint",
    severity=Severity.INFO,
    rationale=(
        "A grant's operations apply to every ciphertext under the key unless an encryption "
        "context constraint limits them to the data the grantee is meant to handle. Only "
        "symmetric encryption keys accept constraints, so other keys are never reported."
    ),
    fix=(
        "Add `constraints: {encryption_context_subset: {...}}` (or "
        "`encryption_context_equals`) with the context the workload uses when it encrypts."
    ),
    tags=("security", "grants", "least-privilege"),
    detect=detect,
)
