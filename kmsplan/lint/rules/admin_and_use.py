"""KMS003: one principal both administers and uses the key (separation of duties)."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.facts import ADMIN_ACTIONS, GRANT_ACTIONS, USE_ACTIONS
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.lint.statements import (
    LocatedStatement,
    grants_everything,
    is_own_root,
    limited_to_aws_services,
    listing,
    policy_statements,
)
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    admin: dict[str, dict[str, LocatedStatement]] = {}  # principal -> action -> first statement
    use: dict[str, set[str]] = {}
    for located in policy_statements(key):
        s = located.statement
        # kms:* is KMS002's finding, NotAction KMS007's, a principal under "*" KMS001's.
        if s.effect != "Allow" or s.principals is None or grants_everything(s):
            continue
        service_grants_only = limited_to_aws_services(s)
        for principal in s.principals.aws:
            if principal == "*" or is_own_root(principal, ctx.account_id):
                continue
            for action in ADMIN_ACTIONS:
                if s.allows_action(action) and not (
                    action in GRANT_ACTIONS and service_grants_only
                ):
                    admin.setdefault(principal, {}).setdefault(action, located)
            use.setdefault(principal, set()).update(a for a in USE_ACTIONS if s.allows_action(a))
    for principal in sorted(admin):
        used = use.get(principal)
        if not used:
            continue
        actions = admin[principal]
        first = min(actions.values(), key=lambda ls: ls.statement.index)
        yield Violation(
            path=first.element("Action"),
            message=(
                f"{principal} uses the key ({listing(used)}) and is also allowed "
                f"to administer it ({listing(actions)}) in {first.label}"
            ),
        )


RULE = Rule(
    id="KMS003",
    name="AdministrationGrantedToKeyUser",
    title="A principal that uses the key is also allowed to administer it",
    severity=Severity.WARNING,
    rationale=(
        "Key administrators manage the key (policy, grants, aliases, enable/disable, deletion) "
        "and key users encrypt and decrypt with it. When one principal does both, a single "
        "compromised application credential can widen its own access, hand out grants, "
        "disable the key or schedule its deletion. Separation of duties keeps these apart."
    ),
    fix=(
        "Give applications only cryptographic actions (kms:Encrypt, kms:Decrypt, "
        "kms:ReEncrypt*, kms:GenerateDataKey*, kms:DescribeKey), and administrative actions "
        "to a separate administrator role. Grant management for AWS services can stay with "
        "users under the condition `kms:GrantIsForAWSResource: true`."
    ),
    tags=("security", "policy", "separation-of-duties"),
    detect=detect,
)
