"""KMS016: the live key policy names a deleted principal (an IAM unique id)."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.errors import PolicyError
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.lint.statements import listing
from kmsplan.model import Key
from kmsplan.policy.principals import unique_id_principals


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    if ctx.live_policy is None:
        return
    try:
        stale = unique_id_principals(ctx.live_policy)
    except PolicyError:
        return  # an unreadable live policy is reported by plan, not by a rule
    if not stale:
        return
    yield Violation(
        path=f"keys.{key.name}.policy",
        message=(
            f"the live policy of key {key.name!r} names {listing(stale)}: IAM unique ids "
            "left behind by deleted roles or users; those statements match nobody now"
        ),
    )


RULE = Rule(
    id="KMS016",
    name="LivePolicyNamesDeletedPrincipal",
    title="Live key policy names a deleted principal (IAM unique id)",
    severity=Severity.WARNING,
    rationale=(
        "When a role or user named in a key policy is deleted, IAM replaces its ARN in the "
        "policy with the entity's unique id (AROA..., AIDA...). Re-creating a role with the "
        "same name does not restore access: the statement silently matches nobody, which "
        "breaks the workload or hides a stale grant of access. Only visible with `--live`."
    ),
    fix=(
        "Apply the manifest's policy again (`kmsplan apply`) once the role exists, or remove "
        "the statement if the principal is gone for good."
    ),
    tags=("reliability", "policy", "live"),
    live_only=True,
    detect=detect,
)
