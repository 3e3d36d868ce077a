"""KMS014: RSA_2048 used for encryption."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.kmsspec import ENCRYPT_DECRYPT
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Reference, Rule, Violation
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    if key.spec != "RSA_2048" or key.usage != ENCRYPT_DECRYPT:
        return
    yield Violation(
        path=f"keys.{key.name}.spec",
        message=f"key {key.name!r} uses RSA_2048 for ENCRYPT_DECRYPT",
    )


RULE = Rule(
    id="KMS014",
    name="Rsa2048ForEncryption",
    title="RSA_2048 key used for encryption",
    severity=Severity.WARNING,
    rationale=(
        "RSA with 2048-bit keys gives about 112 bits of security, the minimum current "
        "guidance accepts and below what it recommends for data that must stay confidential "
        "for years. The key spec cannot be changed after creation."
    ),
    fix=(
        "Declare a key with `spec: RSA_3072` or `RSA_4096` (or a symmetric key with envelope "
        "encryption) and move the workload to it; the spec is immutable, so this is a new key."
    ),
    references=(
        Reference(
            label="AWS Control Tower CT.KMS.PR.2",
            url="https://docs.aws.amazon.com/controltower/latest/controlreference/kms-rules.html",
        ),
    ),
    tags=("security", "cryptography"),
    detect=detect,
)
