"""KMS001: anyone may call the key."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.facts import NARROWING_CONDITION_KEYS
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Reference, Rule, Violation
from kmsplan.lint.statements import (
    describe_actions,
    has_narrowing_condition,
    policy_statements,
)
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    for located in policy_statements(key):
        s = located.statement
        if s.effect != "Allow" or s.principals is None or not s.principals.is_public:
            continue
        if has_narrowing_condition(s, NARROWING_CONDITION_KEYS):
            continue
        yield Violation(
            path=located.element("Principal"),
            message=(
                f'{located.label} allows {describe_actions(s)} to every principal ("*") '
                "with no condition that limits the callers to an account, an organization "
                "or an AWS service"
            ),
        )


RULE = Rule(
    id="KMS001",
    name="PublicPrincipalWithoutCondition",
    title="Key policy allows a public principal without a narrowing condition",
    severity=Severity.ERROR,
    rationale=(
        'A statement with `"Principal": "*"` or `{"AWS": "*"}` applies to every AWS principal '
        "in every account, including anonymous callers. Unless a condition narrows it, anyone "
        "who learns the key ARN can use the key within the statement's actions."
    ),
    fix=(
        "Name the principals that need access, or add a condition that pins the callers: "
        "`kms:CallerAccount`, `aws:PrincipalOrgID`, `aws:PrincipalAccount`, "
        "`aws:SourceAccount`/`aws:SourceArn` (for service principals) or `kms:ViaService`."
    ),
    references=(
        Reference(
            label="AWS Security Hub KMS.5",
            url="https://docs.aws.amazon.com/securityhub/latest/userguide/kms-controls.html#kms-5",
        ),
        Reference(
            label="checkov CKV_AWS_33",
            url="https://www.checkov.io/5.Policy%20Index/cloudformation.html",
        ),
    ),
    tags=("security", "policy", "access"),
    detect=detect,
)
