"""KMS006: kms:CreateGrant without kms:GrantIsForAWSResource."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.model import Key
from kmsplan.policy.lint.rule import LintContext, Reference, Rule, Severity, Violation
from kmsplan.policy.lint.statements import (
    LocatedStatement,
    grants_everything,
    is_own_root,
    listing,
    policy_statements,
)


def _limited_to_aws_services(located: LocatedStatement) -> bool:
    return any(
        c.key.lower() == "kms:grantisforawsresource"
        and c.operator.lower() in ("bool", "stringequals", "stringequalsignorecase")
        and c.values == frozenset({"true"})
        for c in located.statement.conditions
    )


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    for located in policy_statements(key):
        s = located.statement
        # kms:* to a non-root principal is KMS002's finding, NotAction KMS007's.
        if s.effect != "Allow" or s.principals is None or grants_everything(s):
            continue
        if not s.allows_action("kms:CreateGrant") or _limited_to_aws_services(located):
            continue
        grantees = [p for p in s.principals.labels() if not is_own_root(p, ctx.account_id)]
        if not grantees:
            continue
        yield Violation(
            path=located.element("Action"),
            message=(
                f"{located.label} allows kms:CreateGrant to {listing(grantees)} without the "
                'condition "kms:GrantIsForAWSResource": "true"'
            ),
        )


RULE = Rule(
    id="KMS006",
    name="CreateGrantNotLimitedToAwsServices",
    title="kms:CreateGrant is not limited by kms:GrantIsForAWSResource",
    severity=Severity.WARNING,
    rationale=(
        "A grant gives its grantee permissions that the key policy does not show. A principal "
        "that may call kms:CreateGrant freely can give any principal, itself included, any "
        "operation the grant allows, bypassing the reviewed policy. AWS services that "
        "integrate with KMS (EBS, RDS, ...) need CreateGrant only on the caller's behalf, "
        "which `kms:GrantIsForAWSResource` expresses."
    ),
    fix=(
        'Add `"Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}` to the statement, '
        "or remove kms:CreateGrant (a `kms:Create*` pattern includes it) and declare the "
        "grants you need in the manifest, where they are reviewed."
    ),
    references=(
        Reference(
            label="AWS Control Tower CT.KMS.PR.3",
            url="https://docs.aws.amazon.com/controltower/latest/controlreference/kms-rules.html",
        ),
    ),
    tags=("security", "policy", "grants"),
    detect=detect,
)
