"""KMS005: another account's principal without kms:CallerAccount or kms:ViaService."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.facts import CROSS_ACCOUNT_CONDITION_KEYS
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.lint.statements import (
    describe_actions,
    has_narrowing_condition,
    limited_to_aws_services,
    listing,
    policy_statements,
    principal_account,
)
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    own = ctx.account_id
    if own is None:
        return  # without `account:` in the manifest, "another account" cannot be told
    for located in policy_statements(key):
        s = located.statement
        if s.effect != "Allow" or s.principals is None:
            continue
        foreign = [p for p in s.principals.aws if principal_account(p) not in (None, own)]
        if not foreign or has_narrowing_condition(s, CROSS_ACCOUNT_CONDITION_KEYS):
            continue
        # kms:GrantIsForAWSResource holds only when an AWS service calls for the principal
        # (the console's "attachment of persistent resources" statement): already confined.
        if limited_to_aws_services(s):
            continue
        accounts = sorted({principal_account(p) or "" for p in foreign})
        yield Violation(
            path=located.element("Principal"),
            message=(
                f"{located.label} allows {describe_actions(s)} to {listing(foreign)} of "
                f"{'account' if len(accounts) == 1 else 'accounts'} {', '.join(accounts)} "
                f"(the key is in {own}) with no kms:CallerAccount or kms:ViaService condition"
            ),
        )


RULE = Rule(
    id="KMS005",
    name="CrossAccountWithoutCallerCondition",
    title="Cross-account principal without a kms:CallerAccount or kms:ViaService condition",
    severity=Severity.WARNING,
    rationale=(
        "A principal from another account in the key policy can use the key directly, from "
        "anywhere, and an external account root delegates that access to every IAM identity "
        "that account's administrators choose. A condition on `kms:CallerAccount` or "
        "`kms:ViaService` keeps the access to the calls you meant (for example only through "
        "S3 or Secrets Manager in this Region)."
    ),
    fix=(
        "Add `kms:ViaService` (e.g. `s3.eu-west-1.amazonaws.com`) and/or `kms:CallerAccount` "
        "conditions to the statement, or share data through a grant with an encryption "
        "context constraint instead."
    ),
    tags=("security", "policy", "cross-account"),
    detect=detect,
)
