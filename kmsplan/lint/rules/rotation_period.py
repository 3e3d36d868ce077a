"""KMS009: the rotation period is longer than the configured maximum."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.kmsspec import ROTATION_PERIOD_DEFAULT_DAYS, ROTATION_PERIOD_MAX_DAYS, can_rotate
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    period = key.rotation.period_days
    maximum = ctx.config.max_rotation_period_days
    if not key.rotation.enabled or period is None or period <= maximum:
        return
    if not can_rotate(key.spec, key.usage, key.origin):
        return  # the validator rejects rotation settings on such keys
    yield Violation(
        path=f"keys.{key.name}.rotation.period_days",
        message=f"key {key.name!r} rotates every {period} days; the maximum is {maximum} days",
    )


RULE = Rule(
    id="KMS009",
    name="RotationPeriodTooLong",
    title=(
        f"Rotation period is longer than the maximum (default {ROTATION_PERIOD_DEFAULT_DAYS} days)"
    ),
    severity=Severity.WARNING,
    rationale=(
        f"KMS accepts rotation periods up to {ROTATION_PERIOD_MAX_DAYS} days (seven years). "
        "A long period keeps one key material in use for that long, which defeats much of the "
        "point of rotating; yearly rotation is the usual compliance expectation."
    ),
    fix=(
        "Lower `rotation.period_days` to the maximum or less, or raise the maximum for this "
        "run with `kmsplan lint --max-rotation-days DAYS`."
    ),
    tags=("security", "rotation"),
    detect=detect,
)
