"""KMS facts the validator and the lint rules share: key specs and usages, what can rotate,
which grant operations a key supports, and the API's size and range limits.

Source: the AWS KMS API reference (CreateKey, CreateAlias, TagResource, PutKeyPolicy,
EnableKeyRotation, ScheduleKeyDeletion, CreateGrant, GrantConstraints). The local emulator
accepts nearly every invalid value, so these tables are kmsplan's own line of defence.
"""

from __future__ import annotations

from collections.abc import Mapping

# ---- key specs and usages -------------------------------------------------------------------

ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
SIGN_VERIFY = "SIGN_VERIFY"
GENERATE_VERIFY_MAC = "GENERATE_VERIFY_MAC"
KEY_AGREEMENT = "KEY_AGREEMENT"

KEY_USAGES: tuple[str, ...] = (ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT)

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"

# KeySpec -> the KeyUsage values CreateKey accepts with it (first one listed is not a default:
# for specs with several usages KMS requires KeyUsage to be given).
USAGES_BY_SPEC: Mapping[str, tuple[str, ...]] = {
    SYMMETRIC_DEFAULT: (ENCRYPT_DECRYPT,),
    "HMAC_224": (GENERATE_VERIFY_MAC,),
    "HMAC_256": (GENERATE_VERIFY_MAC,),
    "HMAC_384": (GENERATE_VERIFY_MAC,),
    "HMAC_512": (GENERATE_VERIFY_MAC,),
    "RSA_2048": (ENCRYPT_DECRYPT, SIGN_VERIFY),
    "RSA_3072": (ENCRYPT_DECRYPT, SIGN_VERIFY),
    "RSA_4096": (ENCRYPT_DECRYPT, SIGN_VERIFY),
    "ECC_NIST_P256": (SIGN_VERIFY, KEY_AGREEMENT),
    "ECC_NIST_P384": (SIGN_VERIFY, KEY_AGREEMENT),
    "ECC_NIST_P521": (SIGN_VERIFY, KEY_AGREEMENT),
    "ECC_NIST_EDWARDS25519": (SIGN_VERIFY,),
    "ECC_SECG_P256K1": (SIGN_VERIFY,),
    "ML_DSA_44": (SIGN_VERIFY,),
    "ML_DSA_65": (SIGN_VERIFY,),
    "ML_DSA_87": (SIGN_VERIFY,),
    "SM2": (ENCRYPT_DECRYPT, SIGN_VERIFY, KEY_AGREEMENT),
}

KEY_SPECS: tuple[str, ...] = tuple(USAGES_BY_SPEC)

# Key specs offered only in the AWS China Regions.
CHINA_ONLY_SPECS: frozenset[str] = frozenset({"SM2"})

ORIGIN_AWS_KMS = "AWS_KMS"


def is_symmetric_encryption(spec: str, usage: str) -> bool:
    return spec == SYMMETRIC_DEFAULT and usage == ENCRYPT_DECRYPT


def valid_usages(spec: str) -> tuple[str, ...]:
    """The KeyUsage values KMS accepts for `spec` (empty for an unknown spec)."""
    return USAGES_BY_SPEC.get(spec, ())


def implied_usage(spec: str) -> str | None:
    """The usage to assume when a manifest names only the spec: the single valid one, if any."""
    usages = valid_usages(spec)
    return usages[0] if len(usages) == 1 else None


def is_china_region(region: str) -> bool:
    return region.startswith("cn-")


def can_rotate(spec: str, usage: str, origin: str = ORIGIN_AWS_KMS) -> bool:
    """Automatic (and on-demand) rotation: symmetric encryption keys with KMS-made material."""
    return is_symmetric_encryption(spec, usage) and origin == ORIGIN_AWS_KMS


# ---- grants ---------------------------------------------------------------------------------

GRANT_OPERATIONS: tuple[str, ...] = (
    "CreateGrant",
    "Decrypt",
    "DeriveSharedSecret",
    "DescribeKey",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GetPublicKey",
    "ReEncryptFrom",
    "ReEncryptTo",
    "RetireGrant",
    "Sign",
    "Verify",
    "VerifyMac",
)

# Allowed on a grant for every key.
GRANT_OPERATIONS_ANY_KEY: frozenset[str] = frozenset({"CreateGrant", "RetireGrant", "DescribeKey"})

_SYMMETRIC_ENCRYPTION_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
    }
)
# Asymmetric ENCRYPT_DECRYPT keys (RSA, SM2): no data keys, but the public key is readable.
_ASYMMETRIC_ENCRYPTION_OPERATIONS = frozenset(
    {"Decrypt", "Encrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey"}
)
_SIGNING_OPERATIONS = frozenset({"Sign", "Verify", "GetPublicKey"})
_MAC_OPERATIONS = frozenset({"GenerateMac", "VerifyMac"})
_KEY_AGREEMENT_OPERATIONS = frozenset({"DeriveSharedSecret", "GetPublicKey"})


def grant_operations(spec: str, usage: str) -> frozenset[str]:
    """The grant operations KMS accepts in CreateGrant for a key of this spec and usage."""
    if usage == ENCRYPT_DECRYPT:
        specific = (
            _SYMMETRIC_ENCRYPTION_OPERATIONS
            if spec == SYMMETRIC_DEFAULT
            else _ASYMMETRIC_ENCRYPTION_OPERATIONS
        )
    elif usage == SIGN_VERIFY:
        specific = _SIGNING_OPERATIONS
    elif usage == GENERATE_VERIFY_MAC:
        specific = _MAC_OPERATIONS
    elif usage == KEY_AGREEMENT:
        specific = _KEY_AGREEMENT_OPERATIONS
    else:
        specific = frozenset()
    return GRANT_OPERATIONS_ANY_KEY | specific


def grant_constraints_allowed(spec: str, usage: str) -> bool:
    """Encryption-context constraints exist only for symmetric encryption keys."""
    return is_symmetric_encryption(spec, usage)


# ---- limits ---------------------------------------------------------------------------------

ROTATION_PERIOD_MIN_DAYS = 90
ROTATION_PERIOD_MAX_DAYS = 2560
ROTATION_PERIOD_DEFAULT_DAYS = 365  # EnableKeyRotation without RotationPeriodInDays
DELETION_WINDOW_MIN_DAYS = 7
DELETION_WINDOW_MAX_DAYS = 30
DELETION_WINDOW_DEFAULT_DAYS = 30  # ScheduleKeyDeletion without PendingWindowInDays

DESCRIPTION_MAX_CHARS = 8192

ALIAS_RESERVED_PREFIX = "alias/aws/"
ALIAS_MAX_CHARS = 256
ALIASES_PER_KEY = 50
# The API pattern also admits ':', but the documentation's prose (and the emulator) do not.
ALIAS_PATTERN = r"^alias/[A-Za-z0-9/_-]+$"

TAG_KEY_MAX_CHARS = 128
TAG_VALUE_MAX_CHARS = 256
TAGS_PER_KEY = 50
# Prefixes users may not use in tag keys (compared case-insensitively): AWS reserves aws:,
# kmsplan keeps its identity tags under kmsplan:.
AWS_TAG_PREFIX = "aws:"  # tags AWS itself sets (CloudFormation and others)
RESERVED_TAG_PREFIXES: tuple[str, ...] = (AWS_TAG_PREFIX, "kmsplan:")
TAG_EXTRA_CHARACTERS = " _.:/=+-@"  # besides Unicode letters and digits

POLICY_MAX_BYTES = 32_768
POLICY_VERSION_CURRENT = "2012-10-17"
# What IAM reads a policy without "Version" as.
POLICY_VERSION_WHEN_ABSENT = "2008-10-17"
POLICY_VERSIONS: tuple[str, ...] = (POLICY_VERSION_CURRENT, POLICY_VERSION_WHEN_ABSENT)

GRANT_NAME_MAX_CHARS = 256  # of the KMS grant Name, "kmsplan/" included
GRANT_NAME_PATTERN = r"^[a-zA-Z0-9:/_-]+$"
GRANT_PRINCIPAL_PATTERN = r"^[\w+=,.@:/-]+$"
GRANT_PRINCIPAL_MAX_CHARS = 256
GRANT_CONSTRAINT_MAX_PAIRS = 8
GRANT_CONSTRAINT_VALUE_MAX_CHARS = 384


def is_policy_character(ch: str) -> bool:
    """Characters a key policy may contain: TAB, LF, CR and U+0020 to U+00FF."""
    return ch in "\t\n\r" or " " <= ch <= "\u00ff"


def is_tag_character(ch: str) -> bool:
    return ch.isalnum() or ch in TAG_EXTRA_CHARACTERS
