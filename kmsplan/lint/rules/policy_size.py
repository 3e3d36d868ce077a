"""KMS015: the key policy is close to KMS's size limit."""

from __future__ import annotations

import json
from collections.abc import Iterator

from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.model import Key


def policy_bytes(policy: object) -> int:
    """The size of the policy as compact JSON: the least any client can send."""
    return len(json.dumps(policy, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    if key.policy is None:
        return
    size = policy_bytes(key.policy)
    threshold = ctx.config.policy_size_warning_bytes
    limit = ctx.config.policy_size_limit_bytes
    if size <= threshold:
        return
    state = "exceeds" if size > limit else "is close to"
    yield Violation(
        path=f"keys.{key.name}.policy",
        message=(
            f"the key policy is {size:,} bytes as compact JSON and {state} the KMS limit of "
            f"{limit:,} bytes (warning above {threshold:,})"
        ),
    )


RULE = Rule(
    id="KMS015",
    name="PolicyNearSizeLimit",
    title="Key policy is close to the 32 KB limit",
    severity=Severity.WARNING,
    rationale=(
        "KMS rejects key policies larger than 32,768 bytes (LimitExceededException). A policy "
        "close to the limit fails the next time someone adds a statement, typically during "
        "an urgent change."
    ),
    fix=(
        "Merge statements that share effect, actions and conditions; give access to roles "
        "through IAM policies (the account root statement delegates to IAM) or through grants "
        "instead of listing many principals in the key policy."
    ),
    tags=("reliability", "policy"),
    detect=detect,
)
