"""KMS007: Allow with NotPrincipal or NotAction."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.lint.statements import listing, policy_statements
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    for located in policy_statements(key):
        s = located.statement
        if s.effect != "Allow":
            continue
        if s.not_principals is not None:
            yield Violation(
                path=located.element("NotPrincipal"),
                message=(
                    f"{located.label} allows every principal except "
                    f"{listing(s.not_principals.labels())} (Allow with NotPrincipal)"
                ),
            )
        if s.not_actions is not None:
            yield Violation(
                path=located.element("NotAction"),
                message=(
                    f"{located.label} allows every action except "
                    f"{listing(sorted(s.not_actions))} (Allow with NotAction)"
                ),
            )


RULE = Rule(
    id="KMS007",
    name="AllowWithNotPrincipalOrNotAction",
    title="Allow statement uses NotPrincipal or NotAction",
    severity=Severity.ERROR,
    rationale=(
        "`NotPrincipal` with Allow grants access to every principal in every account except "
        "the ones listed, anonymous callers included; `NotAction` with Allow grants every "
        "action except the ones listed, including actions KMS adds later. Both allow far more "
        "than they appear to."
    ),
    fix=(
        "Use `Principal` and `Action` with the principals and actions that need access. "
        "Keep NotPrincipal/NotAction for Deny statements, where they narrow a denial."
    ),
    tags=("security", "policy", "least-privilege"),
    detect=detect,
)
