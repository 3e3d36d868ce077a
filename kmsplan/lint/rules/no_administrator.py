"""KMS004: nobody can change the key policy any more (lockout)."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.errors import PolicyError
from kmsplan.lint.facts import STAND_IN_ACCOUNT
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.model import Key
from kmsplan.policy.lockout import can_manage
from kmsplan.policy.principals import principals_in


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    if key.policy is None:
        return  # KMS's default policy gives the account root kms:*
    try:
        named = sorted(principals_in(key.policy))
        manageable = can_manage(key.policy, named, account_id=ctx.account_id or STAND_IN_ACCOUNT)
    except PolicyError:
        return  # the validator reports a policy that does not parse
    if manageable:
        return
    root = f" (nor the root of account {ctx.account_id})" if ctx.account_id else ""
    yield Violation(
        path=f"keys.{key.name}.policy",
        message=(
            f"no principal named in the policy{root} can call kms:PutKeyPolicy without "
            "conditions: once applied, nobody could change this key policy again"
        ),
    )


RULE = Rule(
    id="KMS004",
    name="NoKeyAdministrator",
    title="No principal can change the key policy (lockout)",
    severity=Severity.ERROR,
    rationale=(
        "A key policy is the only way into a KMS key. If no statement lets anyone call "
        "kms:PutKeyPolicy without conditions (and no Deny takes it away), the key can never be "
        "managed again: not its policy, not its grants, not its deletion. Recovering it takes "
        "AWS Support. KMS refuses such a policy unless BypassPolicyLockoutSafetyCheck is set."
    ),
    fix=(
        "Keep an unconditional statement that allows kms:PutKeyPolicy (or kms:*) to the "
        "account root (`arn:aws:iam::${account_id}:root`) or to a key administrator role, and "
        "no unconditional Deny of kms:PutKeyPolicy that covers them."
    ),
    tags=("security", "policy", "lockout"),
    detect=detect,
)
