"""Every AWS operation kmsplan can call, in one table.

The least-privilege IAM policies (`kmsplan iam-policy`, built in `kmsplan.aws.permissions`)
are derived from this table, and tests check both ways: the policies allow exactly these
operations, and kmsplan's code calls no operation that is not here.

Each row says which IAM action authorizes the call, whether plan needs it (reads) or only
apply (writes), and what it acts on, which decides how a policy can scope it:

- ``ANY``: IAM offers no resource to name (list operations, the tagging API, STS): ``"*"``;
- ``KEY``: a KMS key, scoped to the stack's keys with ``aws:ResourceTag/kmsplan:stack``;
- ``NEW_KEY``: CreateKey, which has no resource yet: scoped with
  ``aws:RequestTag/kmsplan:stack`` (the ownership tags are set in the CreateKey call);
- ``ALIAS``: an alias operation, authorized on the alias (a resource without tags) and on
  the key it names (scoped like ``KEY``);
- ``PRINCIPAL``: an IAM role or user of the account, read to check that it exists (or, for
  AssumeRole, a stack's ``role:``: the run's own credentials need it, not the role).

(KMS service authorization reference: the key resource type supports
``aws:ResourceTag/${TagKey}``, the alias resource type supports no tag condition, CreateKey
and TagResource support ``aws:RequestTag/${TagKey}`` and ``aws:TagKeys``; ListKeys and
ListAliases take only ``"*"``.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Access(str, enum.Enum):
    READ = "read"  # plan (and apply, which plans first)
    WRITE = "write"  # apply only
    # The run's own credentials, to assume a stack's role: (not the plan or apply role's).
    ASSUME = "assume"


class Resource(str, enum.Enum):
    ANY = "any"
    KEY = "key"
    NEW_KEY = "new-key"
    ALIAS = "alias"
    PRINCIPAL = "principal"


# botocore service name -> IAM service prefix
IAM_PREFIX = {
    "kms": "kms",
    "sts": "sts",
    "iam": "iam",
    "resourcegroupstaggingapi": "tag",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    service: str  # botocore's service name: "kms", "resourcegroupstaggingapi"
    name: str  # the API operation: "CreateKey"
    access: Access
    resource: Resource
    why: str

    @property
    def iam_action(self) -> str:
        """The IAM action that authorizes the call: "kms:CreateKey", "tag:GetResources"."""
        return f"{IAM_PREFIX[self.service]}:{self.name}"


def _op(service: str, name: str, access: Access, resource: Resource, why: str) -> Operation:
    return Operation(service=service, name=name, access=access, resource=resource, why=why)


R, W = Access.READ, Access.WRITE

OPERATIONS: tuple[Operation, ...] = (
    # ---- who we are, and where the stack's keys are ----
    _op("sts", "GetCallerIdentity", R, Resource.ANY, "the account guard and the caller"),
    _op("sts", "AssumeRole", Access.ASSUME, Resource.PRINCIPAL,
        "a stack's role:, with the run's own credentials"),
    _op("resourcegroupstaggingapi", "GetResources", R, Resource.ANY,
        "find the stack's keys by their kmsplan:stack tag"),
    _op("kms", "ListKeys", R, Resource.ANY,
        "find keys when tag discovery is unavailable; find a key whose CreateKey answer was lost"),
    _op("kms", "ListAliases", R, Resource.ANY, "every alias of the Region and its key"),
    # ---- reading a key ----
    _op("kms", "ListResourceTags", R, Resource.KEY, "a key's ownership and user tags"),
    _op("kms", "DescribeKey", R, Resource.KEY, "a key's attributes and state"),
    _op("kms", "GetKeyPolicy", R, Resource.KEY, "a key's policy"),
    _op("kms", "GetKeyRotationStatus", R, Resource.KEY, "a key's rotation and its period"),
    _op("kms", "ListGrants", R, Resource.KEY, "a key's grants"),
    _op("kms", "GetKeyLastUsage", R, Resource.KEY, "the deletion gate: a key's last use"),
    # ---- the principal check ----
    _op("iam", "GetRole", R, Resource.PRINCIPAL, "a role named in a policy or grant exists"),
    _op("iam", "GetUser", R, Resource.PRINCIPAL, "a user named in a policy or grant exists"),
    # ---- writes (apply) ----
    _op("kms", "CreateKey", W, Resource.NEW_KEY, "create a key, with its ownership tags"),
    _op("kms", "TagResource", W, Resource.KEY,
        "set tags, including the ownership tags of a new key"),
    _op("kms", "UntagResource", W, Resource.KEY, "remove tags"),
    _op("kms", "PutKeyPolicy", W, Resource.KEY, "set a key's policy"),
    _op("kms", "UpdateKeyDescription", W, Resource.KEY, "set a key's description"),
    _op("kms", "EnableKeyRotation", W, Resource.KEY, "turn rotation on, or change its period"),
    _op("kms", "DisableKeyRotation", W, Resource.KEY, "turn rotation off"),
    _op("kms", "EnableKey", W, Resource.KEY, "enable a key"),
    _op("kms", "DisableKey", W, Resource.KEY, "disable a key"),
    _op("kms", "CreateGrant", W, Resource.KEY, "create a grant"),
    _op("kms", "RevokeGrant", W, Resource.KEY, "revoke a kmsplan grant"),
    _op("kms", "RetireGrant", W, Resource.KEY, "retire a kmsplan grant"),
    _op("kms", "ScheduleKeyDeletion", W, Resource.KEY, "delete a key (through the gate)"),
    _op("kms", "CancelKeyDeletion", W, Resource.KEY, "restore a key pending deletion"),
    _op("kms", "CreateAlias", W, Resource.ALIAS, "create an alias"),
    _op("kms", "UpdateAlias", W, Resource.ALIAS, "move an alias to another key"),
    _op("kms", "DeleteAlias", W, Resource.ALIAS, "delete an alias"),
)


def by_name() -> dict[tuple[str, str], Operation]:
    """(service, operation) -> its row."""
    return {(op.service, op.name): op for op in OPERATIONS}
