"""KMS knowledge the policy rules share: which actions administer a key and which use it,
which condition keys narrow who can call, and how to name places in a key's manifest."""

from __future__ import annotations

import re

from kmsplan.model import Grant, Key

_LIST_ITEM = re.compile(r"\[\d+\]")

ACCOUNT_VARIABLE = "${account_id}"
# Stands for the key's own account while linting a manifest whose account is not known: a
# valid account id shape (so ARNs parse) that no real account has.
STAND_IN_ACCOUNT = "000000000000"

# Actions that change who controls the key or whether it exists ("key administrators" in the
# console's default policy). Grants are here too: a grant is a second, policy-less way in.
ADMIN_ACTIONS: tuple[str, ...] = (
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKeyRotation",
    "kms:RotateKeyOnDemand",
    "kms:CreateGrant",
    "kms:RevokeGrant",
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:UpdateKeyDescription",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ImportKeyMaterial",
    "kms:DeleteImportedKeyMaterial",
    "kms:ReplicateKey",
    "kms:UpdatePrimaryRegion",
)

# Actions that use the key for cryptography ("key users").
USE_ACTIONS: tuple[str, ...] = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateMac",
    "kms:VerifyMac",
    "kms:Sign",
    "kms:Verify",
    "kms:DeriveSharedSecret",
)

# Grant management that the console's "key users" statement allows only for AWS services
# (condition kms:GrantIsForAWSResource): attaching the key to an EBS volume, an RDS instance...
GRANT_ACTIONS: frozenset[str] = frozenset({"kms:CreateGrant", "kms:RevokeGrant", "kms:ListGrants"})

# Condition keys that limit the callers of a statement to an account, an organization or one
# AWS service acting for them. Lower case: condition keys are case-insensitive.
NARROWING_CONDITION_KEYS: frozenset[str] = frozenset(
    {
        "kms:calleraccount",
        "kms:viaservice",
        "aws:principalorgid",
        "aws:principalaccount",
        "aws:principalorgpaths",
        "aws:principalarn",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceowner",
        "aws:sourceorgid",
        "aws:sourcevpc",
        "aws:sourcevpce",
    }
)

# Conditions that confine a cross-account principal's use of the key to its own account's
# calls or to one AWS service (the key policy guidance for cross-account access).
CROSS_ACCOUNT_CONDITION_KEYS: frozenset[str] = frozenset({"kms:calleraccount", "kms:viaservice"})


def key_path(key: Key) -> str:
    return f"keys.{key.name}"


def grant_path(key: Key, grant: Grant) -> str:
    """The document path of a grant: its position in the manifest's list.

    Key.grants is sorted by name, so the position is recovered from the source map by the
    grant's location; without one, the path names the list.
    """
    prefix = f"{key_path(key)}.grants"
    if grant.location is not None:
        for path, location in key.source_map.items():
            if (
                location == grant.location
                and path.startswith(prefix)
                and _LIST_ITEM.fullmatch(path[len(prefix) :])
            ):
                return path
    return prefix
