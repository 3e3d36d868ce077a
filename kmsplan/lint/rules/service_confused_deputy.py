"""KMS018: an AWS service principal may use the key for any account's resources."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.facts import USE_ACTIONS
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Reference, Rule, Violation
from kmsplan.lint.statements import (
    describe_actions,
    listing,
    narrowing,
    policy_statements,
)
from kmsplan.model import Key
from kmsplan.policy.document import Statement

# Conditions that tie a service's request to our own resources or account.
_SOURCE_KEYS = frozenset(
    {
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceowner",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
    }
)
_ENCRYPTION_CONTEXT_PREFIX = "kms:encryptioncontext:"


def _pinned_to_source(statement: Statement) -> bool:
    """A source condition, or a fixed encryption context value: services such as CloudTrail
    and CloudWatch Logs put the resource ARN in the context (`aws:logs:arn`), so pinning it
    to our resources does what aws:SourceArn does."""
    for condition in statement.conditions:
        key = condition.key.lower()
        if key.startswith(_ENCRYPTION_CONTEXT_PREFIX) and narrowing(condition, (key,)):
            return True
        if narrowing(condition, _SOURCE_KEYS):
            return True
    return False


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    for located in policy_statements(key):
        s = located.statement
        if s.effect != "Allow" or s.principals is None or not s.principals.service:
            continue
        if not any(s.allows_action(a) for a in USE_ACTIONS) or _pinned_to_source(s):
            continue
        yield Violation(
            path=located.element("Principal"),
            message=(
                f"{located.label} allows {describe_actions(s)} to "
                f"{listing(sorted(s.principals.service))} with no aws:SourceAccount, "
                "aws:SourceArn or encryption context condition: the service may use the key "
                "for any account's resources (confused deputy)"
            ),
        )


RULE = Rule(
    id="KMS018",
    name="ServicePrincipalWithoutSourceCondition",
    title="AWS service principal may use the key without a source condition",
    severity=Severity.INFO,
    rationale=(
        "A statement naming a service principal (`sns.amazonaws.com`, `s3.amazonaws.com`...) "
        "lets that service use the key whenever it acts for anyone: if another account "
        "learns the key ARN, it can point its own resource in that service at the key and "
        "have the service encrypt or decrypt with it (the confused deputy problem). AWS "
        "recommends pinning such statements to your own account or resources. Statements "
        "pinned by an encryption context condition (CloudTrail's `aws:cloudtrail:arn`, "
        "CloudWatch Logs' `aws:logs:arn`) and statements without cryptographic actions "
        "(DescribeKey) are not reported."
    ),
    fix=(
        "Add `aws:SourceAccount` (your account id) and/or `aws:SourceArn` (the topic, bucket, "
        "trail or log group) conditions to the statement, or an encryption context condition "
        "where the service sets one."
    ),
    references=(
        Reference(
            label="AWS IAM: the confused deputy problem",
            url="https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html",
        ),
    ),
    tags=("security", "policy", "confused-deputy"),
    detect=detect,
)
