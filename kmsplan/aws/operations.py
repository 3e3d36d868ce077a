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
  AssumeRole, a stack's ``role:``: the run's own credentials need it, not the role);
- ``LOCK``: the stack lock's S3 object or DynamoDB table, allowed only for the locks the
  manifests name (``lock:``).

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
    # The stack lock (apply, plan --out): only for stacks whose manifests name a lock:.
    LOCK = "lock"


class Resource(str, enum.Enum):
    ANY = "any"
    KEY = "key"
    NEW_KEY = "new-key"
    ALIAS = "alias"
    PRINCIPAL = "principal"
    LOCK = "lock"  # the stack's lock object (S3) or lock table (DynamoDB)


# botocore service name -> IAM service prefix
IAM_PREFIX = {
    "kms": "kms",
    "sts": "sts",
    "iam": "iam",
    "resourcegroupstaggingapi": "tag",
    "s3": "s3",
    "dynamodb": "dynamodb",
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


R, W, A, L = Access.READ, Access.WRITE, Access.ASSUME, Access.LOCK

# (service, operation, access, resource, why): plain data, one row per operation.
_ROWS: tuple[tuple[str, str, Access, Resource, str], ...] = (
    # ---- who we are, and where the stack's keys are ----
    ("sts", "GetCallerIdentity", R, Resource.ANY, "the account guard and the caller"),
    ("sts", "AssumeRole", A, Resource.PRINCIPAL, "a stack's role:, with the run's credentials"),
    ("resourcegroupstaggingapi", "GetResources", R, Resource.ANY, "the stack's keys, by tag"),
    ("kms", "ListKeys", R, Resource.ANY, "keys, without tag discovery or after a lost CreateKey"),
    ("kms", "ListAliases", R, Resource.ANY, "every alias of the Region and its key"),
    # ---- reading a key ----
    ("kms", "ListResourceTags", R, Resource.KEY, "a key's ownership and user tags"),
    ("kms", "DescribeKey", R, Resource.KEY, "a key's attributes and state"),
    ("kms", "GetKeyPolicy", R, Resource.KEY, "a key's policy"),
    ("kms", "GetKeyRotationStatus", R, Resource.KEY, "a key's rotation and its period"),
    ("kms", "ListGrants", R, Resource.KEY, "a key's grants"),
    ("kms", "GetKeyLastUsage", R, Resource.KEY, "the deletion gate: a key's last use"),
    # ---- the principal check ----
    ("iam", "GetRole", R, Resource.PRINCIPAL, "a role named in a policy or grant exists"),
    ("iam", "GetUser", R, Resource.PRINCIPAL, "a user named in a policy or grant exists"),
    # ---- writes (apply) ----
    ("kms", "CreateKey", W, Resource.NEW_KEY, "create a key, with its ownership tags"),
    ("kms", "TagResource", W, Resource.KEY, "set tags, a new key's ownership tags too"),
    ("kms", "UntagResource", W, Resource.KEY, "remove tags"),
    ("kms", "PutKeyPolicy", W, Resource.KEY, "set a key's policy"),
    ("kms", "UpdateKeyDescription", W, Resource.KEY, "set a key's description"),
    ("kms", "EnableKeyRotation", W, Resource.KEY, "turn rotation on, or change its period"),
    ("kms", "DisableKeyRotation", W, Resource.KEY, "turn rotation off"),
    ("kms", "EnableKey", W, Resource.KEY, "enable a key"),
    ("kms", "DisableKey", W, Resource.KEY, "disable a key"),
    ("kms", "CreateGrant", W, Resource.KEY, "create a grant"),
    ("kms", "RevokeGrant", W, Resource.KEY, "revoke a kmsplan grant"),
    ("kms", "RetireGrant", W, Resource.KEY, "retire a kmsplan grant"),
    ("kms", "ScheduleKeyDeletion", W, Resource.KEY, "delete a key (through the gate)"),
    ("kms", "CancelKeyDeletion", W, Resource.KEY, "restore a key pending deletion"),
    ("kms", "CreateAlias", W, Resource.ALIAS, "create an alias"),
    ("kms", "UpdateAlias", W, Resource.ALIAS, "move an alias to another key"),
    ("kms", "DeleteAlias", W, Resource.ALIAS, "delete an alias"),
    # A replica: ReplicateKey on the primary, which also takes kms:CreateKey (with the
    # ownership tags) in the replica's Region; UpdatePrimaryRegion on both keys.
    ("kms", "ReplicateKey", W, Resource.KEY, "replicate a multi-Region key into a Region"),
    ("kms", "UpdatePrimaryRegion", W, Resource.KEY, "move a multi-Region key's primary"),
    # ---- the stack lock (lock: s3://BUCKET/PREFIX or dynamodb://TABLE) ----
    ("s3", "PutObject", L, Resource.LOCK, "take the stack lock (If-None-Match: *)"),
    ("s3", "GetObject", L, Resource.LOCK, "who holds the stack lock"),
    ("s3", "DeleteObject", L, Resource.LOCK, "release the stack lock (If-Match)"),
    ("dynamodb", "PutItem", L, Resource.LOCK, "take the stack lock (a condition expression)"),
    ("dynamodb", "GetItem", L, Resource.LOCK, "who holds the stack lock"),
    ("dynamodb", "DeleteItem", L, Resource.LOCK, "release the stack lock (its lock id)"),
)


OPERATIONS: tuple[Operation, ...] = tuple(
    Operation(service=service, name=name, access=access, resource=resource, why=why)
    for service, name, access, resource, why in _ROWS
)
