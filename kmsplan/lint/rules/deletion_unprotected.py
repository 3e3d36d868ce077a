"""KMS011: kmsplan's deletion protection is off for the key."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Reference, Rule, Violation
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    if key.deletion.protected:
        return
    yield Violation(
        path=f"keys.{key.name}.deletion.protected",
        message=(
            f"deletion protection is off for key {key.name!r}: a plan may schedule its "
            "deletion (with --allow-delete)"
        ),
    )


RULE = Rule(
    id="KMS011",
    name="DeletionProtectionOff",
    title="Deletion protection is off",
    severity=Severity.WARNING,
    rationale=(
        "kmsplan refuses to schedule the deletion of a key whose `kmsplan:deletion-protection` "
        "tag is true. Turning protection off is the reviewed first step of retiring a key; "
        "outside of that, it removes the main guard against deleting a key by removing its "
        "block from a manifest."
    ),
    fix=(
        "Set `deletion.protected: true`. When the key is being retired on purpose, suppress "
        "this rule for the key with a reason: `lint: {disable: [{rule: KMS011, reason: ...}]}`."
    ),
    references=(
        Reference(
            label="AWS Security Hub KMS.3",
            url="https://docs.aws.amazon.com/securityhub/latest/userguide/kms-controls.html#kms-3",
        ),
    ),
    tags=("reliability", "deletion"),
    detect=detect,
)
