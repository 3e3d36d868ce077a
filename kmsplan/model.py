"""The typed model that manifests load into and live KMS is read into.

Desired state (from manifests) and live state (from KMS) share these classes, so the differ
compares like with like. Everything here is frozen and free of I/O. Collections are tuples,
kept sorted where order carries no meaning, so that equal states compare equal.

Policies are plain JSON-shaped dicts (AWS casing); treat them as immutable.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kmsplan import kmsspec

# Tags kmsplan owns. Users may not declare tags with this prefix.
TAG_PREFIX = "kmsplan:"
TAG_STACK = "kmsplan:stack"
TAG_KEY = "kmsplan:key"
TAG_PROTECTION = "kmsplan:deletion-protection"
# The pending window (days) the key is scheduled for deletion with once its block is removed:
# like the protection, it lives on the key, so removing the block does not lose it.
TAG_WINDOW = "kmsplan:deletion-window"
# Set on a surplus key kmsplan released: the id of the key it kept for the same stack and name.
TAG_DUPLICATE_OF = "kmsplan:duplicate-of"
# Grants kmsplan owns are named "kmsplan/<name>"; every other grant is foreign.
GRANT_PREFIX = "kmsplan/"

DEFAULT_WINDOW_DAYS = kmsspec.DELETION_WINDOW_DEFAULT_DAYS

JsonDict = dict[str, Any]


class KeyState(str, enum.Enum):
    """KMS KeyState values (DescribeKey)."""

    CREATING = "Creating"
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"
    PENDING_IMPORT = "PendingImport"
    PENDING_REPLICA_DELETION = "PendingReplicaDeletion"
    UNAVAILABLE = "Unavailable"
    UPDATING = "Updating"

    @property
    def is_pending_deletion(self) -> bool:
        return self in (KeyState.PENDING_DELETION, KeyState.PENDING_REPLICA_DELETION)


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Where a live object is, or where a change goes: one account and one Region.

    A stack has a home placement (its ``account:`` and ``region:``, as the run resolved
    them); a change or a live object elsewhere (a replica in another Region, a stack in
    another account) says so with its own placement. The run layer turns a placement into
    clients; nothing below it assumes there is only one.
    """

    account_id: str
    region: str

    def __str__(self) -> str:
        return f"{self.account_id}/{self.region}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """Where something was declared: for diagnostics, lint findings and SARIF."""

    file: str
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotation:
    enabled: bool = False
    # None means "not known" (live: KMS did not report it) or "KMS default" (desired: only
    # meaningful when enabled). The differ never reports a diff against an unknown period.
    period_days: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Deletion:
    # Desired: what the manifest asks for. Live: read from the kmsplan:deletion-protection tag.
    protected: bool = True
    window_days: int = DEFAULT_WINDOW_DAYS


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantConstraints:
    # Sorted (key, value) pairs; at most one of the two is set.
    encryption_context_subset: tuple[tuple[str, str], ...] | None = None
    encryption_context_equals: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    name: str  # logical name; the KMS grant Name is GRANT_PREFIX + name for owned grants
    grantee: str
    operations: tuple[str, ...]  # sorted, KMS GrantOperation values
    retiring_principal: str | None = None
    constraints: GrantConstraints | None = None
    # Live only: the KMS grant id. Not part of equality.
    grant_id: str | None = field(default=None, compare=False)
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LintSuppression:
    rule: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Replica:
    """A replica of a multi-Region key in another Region of the same account.

    Spec, usage, rotation and key material are the primary's (KMS shares them); aliases,
    policy, tags, description and enabled are the replica's own. Desired: the manifest's
    ``replicas.<region>`` block with the primary's policy, tags and description filled in
    where it leaves them out. Live: what DescribeKey and friends said in that Region.
    """

    region: str
    description: str = ""
    enabled: bool = True
    aliases: tuple[str, ...] = ()  # sorted full names, "alias/...", in the replica's Region
    tags: tuple[tuple[str, str], ...] = ()  # sorted user tags; never the reserved ones
    # Desired: None means the primary declares no policy either (KMS's default policy, not
    # managed). Live: the parsed policy, or None if it could not be read.
    policy: JsonDict | None = field(default=None, hash=False)
    location: Location | None = field(default=None, compare=False)

    # ---- live only; not part of equality ----
    arn: str | None = field(default=None, compare=False)
    state: KeyState | None = field(default=None, compare=False)
    deletion_date: str | None = field(default=None, compare=False)
    policy_text: str | None = field(default=None, compare=False)
    live_tags: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    placement: Placement | None = field(default=None, compare=False)

    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)


@dataclass(frozen=True, slots=True, kw_only=True)
class Key:
    name: str  # logical name, the kmsplan:key tag
    description: str = ""
    spec: str = kmsspec.SYMMETRIC_DEFAULT
    usage: str = kmsspec.ENCRYPT_DECRYPT
    origin: str = kmsspec.ORIGIN_AWS_KMS
    multi_region: bool = False
    enabled: bool = True
    aliases: tuple[str, ...] = ()  # sorted full names, "alias/..."
    rotation: Rotation = Rotation()
    deletion: Deletion = Deletion()
    tags: tuple[tuple[str, str], ...] = ()  # sorted user tags; never the reserved kmsplan: tags
    # Desired: None means the manifest declares no policy: the key is created with KMS's
    # default policy and its policy is not managed afterwards. Live: the parsed policy, or
    # None if it could not be read/parsed (see policy_text).
    policy: JsonDict | None = field(default=None, hash=False)
    grants: tuple[Grant, ...] = ()  # sorted by name; owned grants only
    # Multi-Region keys only: the replicas, sorted by Region (never the primary's own).
    replicas: tuple[Replica, ...] = ()
    bypass_policy_lockout_safety_check: bool = False  # desired only: the manifest asks for it
    lint_disable: tuple[LintSuppression, ...] = ()  # desired only
    # Desired only: the existing key this block adopts (``adopt:``: a key id, key ARN or
    # alias name), until the key carries the block's tags.
    adopt: str | None = field(default=None, compare=False)

    # Where the key block was declared, and a map from document path
    # ("keys.orders.policy.Statement[0]") to location, for lint and diagnostics.
    location: Location | None = field(default=None, compare=False)
    source_map: Mapping[str, Location] = field(default_factory=dict, compare=False, hash=False)

    # ---- live only (None on desired keys); not part of equality ----
    key_id: str | None = field(default=None, compare=False)
    arn: str | None = field(default=None, compare=False)
    state: KeyState | None = field(default=None, compare=False)
    deletion_date: str | None = field(default=None, compare=False)  # ISO 8601
    policy_text: str | None = field(default=None, compare=False)  # raw live policy
    foreign_grants: tuple[Grant, ...] = field(default=(), compare=False)  # not kmsplan-owned
    # Live tags exactly as read, reserved ones included (for fingerprints and the gate).
    live_tags: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    # The account and Region the live key was read in.
    placement: Placement | None = field(default=None, compare=False)
    # Live multi-Region keys: the Region of the set's primary and the Regions of its
    # replicas (DescribeKey's MultiRegionConfiguration); None and () for single-Region keys.
    primary_region: str | None = field(default=None, compare=False)
    replica_regions: tuple[str, ...] = field(default=(), compare=False)
    # Live only: the key's CreationDate (ISO 8601), to tell the older of two duplicates.
    created: str | None = field(default=None, compare=False)

    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)

    def replica(self, region: str) -> Replica | None:
        for r in self.replicas:
            if r.region == region:
                return r
        return None

    @property
    def is_symmetric_encryption(self) -> bool:
        return kmsspec.is_symmetric_encryption(self.spec, self.usage)


@dataclass(frozen=True, slots=True, kw_only=True)
class Role:
    """The IAM role a stack is planned and applied with (``role:``), assumed with the run's
    credentials."""

    arn: str  # arn:PARTITION:iam::ACCOUNT:role/PATH/NAME
    external_id: str | None = None
    session_name: str | None = None

    @property
    def account(self) -> str:
        """The account the role lives in (the ARN's fifth field)."""
        return self.arn.split(":")[4]


@dataclass(frozen=True, slots=True, kw_only=True)
class Stack:
    """The desired state: one stack, merged from one or more manifest files."""

    name: str
    account: str | None = None  # the account guard, if declared
    region: str | None = None
    role: Role | None = None  # the role to assume for this stack, if declared
    lock: str | None = None  # the stack lock's URL (s3://BUCKET/PREFIX, dynamodb://TABLE)
    keys: tuple[Key, ...] = ()  # sorted by name
    default_window_days: int = DEFAULT_WINDOW_DAYS  # window for keys whose block is gone
    files: tuple[str, ...] = ()
    # Logical names whose blocks were removed on purpose (``released:``): kmsplan removes
    # its tags from those keys and leaves everything else as it is.
    released: tuple[str, ...] = ()  # sorted

    def key(self, name: str) -> Key | None:
        for k in self.keys:
            if k.name == name:
                return k
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class LastUsage:
    """GetKeyLastUsage answer for the deletion gate. known=False: KMS could not tell us."""

    known: bool
    last_used: str | None = None  # ISO 8601 of the last cryptographic use; None: never used
    tracking_start: str | None = None
    detail: str = ""  # why it is unknown (API missing, AccessDenied, ...)


@dataclass(frozen=True, slots=True, kw_only=True)
class AliasTarget:
    name: str  # "alias/..."
    target_key_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AdoptTarget:
    """What one key block's ``adopt:`` names in KMS, as the reader found it (DescribeKey and
    the key's tags). Facts only: whether the key may be adopted is the plan's to judge."""

    name: str  # the block's logical name
    ref: str  # what adopt: says: a key id, key ARN or alias name
    key_id: str | None = None  # None: DescribeKey found no such key
    arn: str | None = None
    aws_managed: bool = False  # KeyManager=AWS
    owner_stack: str | None = None  # the key's kmsplan:stack tag, if any
    owner_key: str | None = None  # its kmsplan:key tag, if it is a name a manifest can declare
    # The key read like a managed key and named as the block, when it carries no kmsplan
    # tags of a stack (so it could be adopted); None otherwise.
    key: Key | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveState:
    """What the reader saw in KMS for one stack in one account and Region."""

    stack: str
    account_id: str
    region: str
    caller_arn: str = ""
    keys: tuple[Key, ...] = ()  # the stack's keys, live fields filled, sorted by name
    # Every customer alias in the Region (alias/aws/* excluded), to detect conflicts and
    # takeovers of aliases held by keys outside the stack.
    aliases: tuple[AliasTarget, ...] = ()
    # GetKeyLastUsage answers for keys that are deletion candidates, by logical name; for
    # replicas that are, by replica_usage_name(key, region).
    last_usage: Mapping[str, LastUsage] = field(default_factory=dict, hash=False)
    # The customer aliases of each replica Region read (alias/aws/* excluded), by Region.
    regional_aliases: Mapping[str, tuple[AliasTarget, ...]] = field(
        default_factory=dict, hash=False
    )
    # Same-account IAM principals checked for existence: arn -> True/False, None if unknown.
    principals: Mapping[str, bool | None] = field(default_factory=dict, hash=False)
    warnings: tuple[str, ...] = ()
    # What each declared ``adopt:`` names, by block (sorted by name).
    adoptions: tuple[AdoptTarget, ...] = ()

    @property
    def placement(self) -> Placement:
        """The stack's home account and Region, where this state was read."""
        return Placement(account_id=self.account_id, region=self.region)

    def key(self, name: str) -> Key | None:
        for k in self.keys:
            if k.name == name:
                return k
        return None


def replica_usage_name(key: str, region: str) -> str:
    """The LiveState.last_usage entry of key `key`'s replica in `region`."""
    return f"{key}@{region}"


def deletion_protected(tags: Mapping[str, str]) -> bool:
    """Whether a live key's tags protect it from deletion: unless its protection tag says
    exactly "false". A missing or garbled tag protects: protection lives on the key and fails
    safe. The one statement of that rule, for the reader, the differ, the gate and the
    applier's re-check."""
    return tags.get(TAG_PROTECTION) != "false"


def recorded_window(tags: Mapping[str, str]) -> int | None:
    """The pending window recorded on a live key (its ``kmsplan:deletion-window`` tag), if
    the tag is there and holds a window KMS accepts; None otherwise (a key from before the
    tag, or a tag edited by hand)."""
    value = tags.get(TAG_WINDOW, "")
    if not value.isdigit():
        return None
    days = int(value)
    in_range = kmsspec.DELETION_WINDOW_MIN_DAYS <= days <= kmsspec.DELETION_WINDOW_MAX_DAYS
    return days if in_range else None
