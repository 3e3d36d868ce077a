"""KMS008: automatic rotation is off on a key KMS can rotate."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.kmsspec import can_rotate
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Reference, Rule, Violation
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    if key.rotation.enabled or not can_rotate(key.spec, key.usage, key.origin):
        return
    yield Violation(
        path=f"keys.{key.name}.rotation.enabled",
        message=(
            f"automatic rotation is disabled on {key.spec} key {key.name!r}, which KMS can rotate"
        ),
    )


RULE = Rule(
    id="KMS008",
    name="RotationDisabled",
    title="Automatic key rotation is disabled on a key that KMS can rotate",
    severity=Severity.WARNING,
    rationale=(
        "Rotation gives the key new key material on a schedule while old ciphertexts stay "
        "decryptable; it limits how much data one key material protects and is expected by "
        "most compliance frameworks. KMS rotates symmetric encryption keys with KMS-generated "
        "material only: asymmetric, HMAC and imported-material keys are never reported."
    ),
    fix="Set `rotation: {enabled: true}` on the key (or in `defaults:`).",
    references=(
        Reference(
            label="AWS Security Hub KMS.4",
            url="https://docs.aws.amazon.com/securityhub/latest/userguide/kms-controls.html#kms-4",
        ),
        Reference(
            label="AWS Control Tower CT.KMS.PR.1",
            url="https://docs.aws.amazon.com/controltower/latest/controlreference/kms-rules.html",
        ),
        Reference(
            label="checkov CKV_AWS_7",
            url="https://www.checkov.io/5.Policy%20Index/cloudformation.html",
        ),
    ),
    tags=("security", "rotation"),
    detect=detect,
)
