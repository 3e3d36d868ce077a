"""KMS006: kms:CreateGrant without kms:GrantIsForAWSResource."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Reference, Rule, Violation
from kmsplan.lint.statements import (
    describe_principals,
    grants_everything,
    is_own_root,
    key_administrators,
    limited_to_aws_services,
    policy_statements,
)
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    statements = policy_statements(key)
    # A key administrator (kms:PutKeyPolicy, e.g. the console's kms:Put*) can rewrite the
    # policy to give itself anything: CreateGrant adds no power to report.
    administrators = key_administrators(statements)
    for located in statements:
        s = located.statement
        # kms:* to a non-root principal is KMS002's finding, NotAction KMS007's.
        if s.effect != "Allow" or s.principals is None or grants_everything(s):
            continue
        if not s.allows_action("kms:CreateGrant") or limited_to_aws_services(s):
            continue
        grantees = [
            p
            for p in s.principals.labels()
            if not is_own_root(p, ctx.account_id) and p not in administrators
        ]
        if not grantees:
            continue
        yield Violation(
            path=located.element("Action"),
            message=(
                f"{located.label} allows kms:CreateGrant to {describe_principals(grantees)} "
                "without a condition that limits it to AWS services "
                '("kms:GrantIsForAWSResource": "true" or kms:ViaService)'
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
        "which `kms:GrantIsForAWSResource` (or a `kms:ViaService` condition) expresses. "
        "Key administrators, who may call kms:PutKeyPolicy without conditions, are not "
        "reported: they can give themselves any permission anyway."
    ),
    fix=(
        'Add `"Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}` (or a '
        "`kms:ViaService` condition naming the services) to the statement, or remove "
        "kms:CreateGrant (a `kms:Create*` pattern includes it) and declare the grants you "
        "need in the manifest, where they are reviewed."
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
