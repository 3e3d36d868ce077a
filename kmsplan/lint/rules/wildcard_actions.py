"""KMS002: every KMS action to a principal other than the account root."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.lint.statements import (
    is_full_wildcard,
    is_own_root,
    listing,
    policy_statements,
)
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    for located in policy_statements(key):
        s = located.statement
        if s.effect != "Allow" or s.principals is None or s.actions is None:
            continue
        wildcards = sorted(a for a in s.actions if is_full_wildcard(a))
        if not wildcards:
            continue
        others = [p for p in s.principals.labels() if not is_own_root(p, ctx.account_id)]
        if not others:
            continue
        yield Violation(
            path=located.element("Action"),
            message=(
                f'{located.label} allows "{wildcards[0]}" (every KMS action, key policy and '
                f"deletion included) to {listing(others)}, not only to the "
                "account root"
            ),
        )


RULE = Rule(
    id="KMS002",
    name="WildcardActionsToNonRoot",
    title="Every KMS action is granted to a principal other than the account root",
    severity=Severity.WARNING,
    rationale=(
        "`kms:*` includes kms:PutKeyPolicy, kms:ScheduleKeyDeletion and kms:CreateGrant: the "
        "principal can rewrite the policy, delete the key (and so every byte encrypted under "
        "it) and hand out access. The account root statement is the one conventional place "
        "for `kms:*`, because it delegates to IAM policies in the account."
    ),
    fix=(
        "List the actions the principal needs: the cryptographic ones (kms:Decrypt, "
        "kms:GenerateDataKey...) for applications, the administrative ones for key "
        "administrators, never both for one principal."
    ),
    tags=("security", "policy", "least-privilege"),
    detect=detect,
)
