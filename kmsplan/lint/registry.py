"""The rules `kmsplan lint` runs, in id order. Explicit on purpose: adding a rule is a
reviewed one-line change here, never a side effect of a file appearing in a folder.

`RULE_FAILED` (KMS000) is not one of them: the engine reports it in place of the findings of a
rule that raised, so that advice never aborts `kmsplan lint` or `kmsplan plan`.
"""

from __future__ import annotations

from collections.abc import Iterable

from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.lint.rules import (
    admin_and_use,
    allow_with_not,
    cross_account,
    deletion_unprotected,
    grant_cross_account,
    grant_delegates,
    grant_unconstrained,
    no_administrator,
    policy_size,
    public_principal,
    rotation_disabled,
    rotation_period,
    rsa_2048_encryption,
    service_confused_deputy,
    short_deletion_window,
    unique_id_principals,
    unknown_suppression,
    unrestricted_create_grant,
    wildcard_actions,
)
from kmsplan.model import Key

RULES: tuple[Rule, ...] = (
    public_principal.RULE,  # KMS001
    wildcard_actions.RULE,  # KMS002
    admin_and_use.RULE,  # KMS003
    no_administrator.RULE,  # KMS004
    cross_account.RULE,  # KMS005
    unrestricted_create_grant.RULE,  # KMS006
    allow_with_not.RULE,  # KMS007
    rotation_disabled.RULE,  # KMS008
    rotation_period.RULE,  # KMS009
    short_deletion_window.RULE,  # KMS010
    deletion_unprotected.RULE,  # KMS011
    grant_delegates.RULE,  # KMS012
    grant_unconstrained.RULE,  # KMS013
    rsa_2048_encryption.RULE,  # KMS014
    policy_size.RULE,  # KMS015
    unique_id_principals.RULE,  # KMS016
    unknown_suppression.RULE,  # KMS017
    service_confused_deputy.RULE,  # KMS018
    grant_cross_account.RULE,  # KMS019
)

RULE_IDS: frozenset[str] = frozenset(rule.id for rule in RULES)


def rule_by_id(rule_id: str) -> Rule | None:
    for rule in RULES:
        if rule.id == rule_id.upper():
            return rule
    return None


def _reported_by_the_engine(key: Key, ctx: LintContext) -> Iterable[Violation]:
    return ()


RULE_FAILED = Rule(
    id="KMS000",
    name="RuleFailed",
    title="A lint rule failed on this key",
    severity=Severity.WARNING,
    rationale=(
        "A rule that raises an exception is a bug in kmsplan, not in the manifest. Its "
        "findings for the key are missing, so the key was not fully reviewed; the other "
        "rules, and `kmsplan plan`, go on. The finding names the rule and the exception."
    ),
    fix=(
        "Report the message to the kmsplan maintainers. Until it is fixed, review the key "
        "against the failed rule by hand; disabling that rule for the key (`lint.disable`) "
        "also marks this finding suppressed."
    ),
    tags=("kmsplan",),
    detect=_reported_by_the_engine,
)
