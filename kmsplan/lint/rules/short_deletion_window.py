"""KMS010: the deletion waiting period is shorter than the KMS default (30 days)."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.kmsspec import (
    DELETION_WINDOW_DEFAULT_DAYS,
    DELETION_WINDOW_MAX_DAYS,
    DELETION_WINDOW_MIN_DAYS,
)
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Reference, Rule, Violation
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    window = key.deletion.window_days
    minimum = ctx.config.min_deletion_window_days
    if window >= minimum:
        return
    yield Violation(
        path=f"keys.{key.name}.deletion.window_days",
        message=(
            f"key {key.name!r} would be destroyed {window} days after its deletion is "
            f"scheduled; at least {minimum} days leaves time to notice and cancel"
        ),
    )


RULE = Rule(
    id="KMS010",
    name="ShortDeletionWindow",
    title=f"Deletion waiting period is shorter than {DELETION_WINDOW_DEFAULT_DAYS} days",
    severity=Severity.WARNING,
    rationale=(
        "Deleting a KMS key destroys every byte ever encrypted under it. The waiting period "
        f"({DELETION_WINDOW_MIN_DAYS} to {DELETION_WINDOW_MAX_DAYS} days) is the only time in "
        "which a mistaken or malicious deletion can be cancelled, and usage of the key during "
        "it is the usual alarm. A short window leaves little time for that."
    ),
    fix=f"Set `deletion.window_days: {DELETION_WINDOW_DEFAULT_DAYS}` (the KMS default).",
    references=(
        Reference(
            label="AWS Security Hub KMS.3",
            url="https://docs.aws.amazon.com/securityhub/latest/userguide/kms-controls.html#kms-3",
        ),
    ),
    tags=("reliability", "deletion"),
    detect=detect,
)
