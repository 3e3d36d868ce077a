"""Read one stack's live state from KMS into the shared model.

Identity is by tags: a key belongs to stack S when its `kmsplan:stack` tag is S; its logical
name is its `kmsplan:key` tag. AWS managed keys (KeyManager=AWS, `alias/aws/*`) and keys of
other stacks are never read beyond what discovery needs.

API calls, for a stack with N managed keys in a Region with K keys and A aliases:

=============================  ==========================================================
Step                           Calls
=============================  ==========================================================
caller identity                1 STS GetCallerIdentity
discovery                      ceil(N/100) RGTA GetResources (tag filter on kmsplan:stack):
                               nothing per key of other stacks or unmanaged keys
aliases                        ceil(A/100) ListAliases, once for the Region (alias/aws/*
                               dropped): every key's aliases and the alias→key map
per managed key (concurrent)   ListResourceTags (authoritative tags: RGTA's index lags),
                               DescribeKey, GetKeyPolicy (PolicyName="default"),
                               GetKeyRotationStatus (only keys KMS can rotate),
                               ListGrants (+1 per further 100 grants): at most 5
adoptions (``adopt:``)         per block: DescribeKey, ListResourceTags; and, for a key no
                               stack owns, the per-key reads above
confirmation (see below)       ceil(K/1000) ListKeys + (K − N) ListResourceTags
deletion candidates            1 GetKeyLastUsage each (retries off)
principal checks               1 IAM GetRole/GetUser each
=============================  ==========================================================

So a converged stack's plan costs about 5N + 3 calls whatever else is in the account.

Consistency: RGTA's tag index can lag CreateKey by minutes. A managed key that discovery
missed would be planned as a create, and created a second time; that must never happen. So
when a desired key is not among the keys discovered (the plan would create it), or when RGTA
cannot be used (AccessDenied, not served), the reader confirms with an exhaustive scan:
ListKeys, then ListResourceTags for every key discovery did not already read. Only plans
with pending creates or adoptions pay for it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import botocore

from kmsplan import kmsspec
from kmsplan.aws.client import (
    ENDPOINT_HINT,
    AwsClients,
    call,
    caller_identity,
    is_access_denied,
    paginate,
    require,
    run_concurrently,
)
from kmsplan.errors import AwsError, KmsplanError
from kmsplan.manifest.schema import PATTERN_TEXT, manifest_schema
from kmsplan.model import (
    GRANT_PREFIX,
    TAG_KEY,
    TAG_PREFIX,
    TAG_STACK,
    AdoptTarget,
    AliasTarget,
    Deletion,
    Grant,
    GrantConstraints,
    Key,
    KeyState,
    LastUsage,
    LiveState,
    Placement,
    Rotation,
    Stack,
    deletion_protected,
    recorded_window,
)

log = logging.getLogger(__name__)

AWS_ALIAS_PREFIX = kmsspec.ALIAS_RESERVED_PREFIX
# Tags AWS itself sets (CloudFormation and others); users cannot write or remove them.
AWS_TAG_PREFIX = kmsspec.AWS_TAG_PREFIX
NOT_FOUND = "NotFoundException"

Tags = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Candidate:
    """A key that may belong to the stack; `tags` are set when already read authoritatively."""

    key_id: str
    tags: Tags | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _ReadKey:
    key: Key
    created: str  # ISO 8601 CreationDate, to pick between duplicates


class _Warnings:
    def __init__(self) -> None:
        self._items: list[str] = []
        self._lock = threading.Lock()

    def add(self, message: str) -> None:
        log.warning("%s", message)
        with self._lock:
            self._items.append(message)

    def all(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._items)


def read_live(
    clients: AwsClients,
    stack: Stack,
    *,
    deletion_candidates: Collection[str] = (),
    check_principals: Collection[str] = (),
    identity: tuple[str, str] | None = None,
) -> LiveState:
    """The live state of `stack` in the clients' account and Region.

    `deletion_candidates` are logical names of keys the plan may delete: their last
    cryptographic use is asked of KMS. `check_principals` are same-account IAM role/user ARNs
    whose existence is checked. `identity` is the (account id, caller ARN) of
    `caller_identity(clients)` when the caller already has it (saves the STS call). Raises
    KmsplanError (AwsError) when KMS cannot be read.
    """
    reader = _Reader(clients, stack)
    # Caller identity and the Region's alias listing (one call per 100 aliases, unmanaged
    # ones included) run beside discovery and the per-key reads, which need neither.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="kmsplan-read") as pool:
        who = pool.submit(lambda: identity or caller_identity(clients))
        alias_list = pool.submit(paginate, clients.kms, "ListAliases", "Aliases", page_size=100)
        discovered = reader.discover()
        found = reader.read_candidates(discovered or ())
        account_id, caller_arn = who.result()
        adoptions, adopted = reader.resolve_adoptions(account_id=account_id)
        found += reader.read_candidates(
            c for c in adopted if c.key_id not in {r.key.key_id for r in found}
        )
        missing = {k.name for k in stack.keys} - {r.key.name for r in found}
        if discovered is None or missing:
            if discovered is not None:
                log.info("not found by tag discovery, confirming with a scan: %s", sorted(missing))
            examined = {c.key_id for c in discovered or ()}
            found += reader.scan(exclude=examined)
        aliases = alias_list.result()

    keys = _dedupe(found, stack.name, reader.warnings)
    alias_targets = _alias_targets(aliases)
    placement = Placement(account_id=account_id, region=clients.region)
    keys = [
        dataclasses.replace(_with_aliases(key, alias_targets), placement=placement) for key in keys
    ]
    adoptions = [
        t
        if t.key is None
        else dataclasses.replace(
            t, key=dataclasses.replace(_with_aliases(t.key, alias_targets), placement=placement)
        )
        for t in adoptions
    ]

    from kmsplan.aws.replicas import read_replicas  # it builds on this module

    keys, regional_aliases, replica_usage = read_replicas(
        clients, stack, keys, account_id=account_id
    )
    last_usage = {**_last_usages(clients, keys, deletion_candidates), **replica_usage}
    principals = _check_principals(clients, account_id, check_principals, reader.warnings)
    return LiveState(
        stack=stack.name,
        account_id=account_id,
        region=clients.region,
        caller_arn=caller_arn,
        keys=tuple(sorted(keys, key=lambda k: k.name)),
        aliases=alias_targets,
        regional_aliases=regional_aliases,
        last_usage=last_usage,
        principals=principals,
        warnings=reader.warnings.all(),
        adoptions=tuple(adoptions),
    )


class _Reader:
    def __init__(self, clients: AwsClients, stack: Stack) -> None:
        self.clients = clients
        self.stack = stack
        self.warnings = _Warnings()

    def resolve_adoptions(self, *, account_id: str) -> tuple[list[AdoptTarget], list[_Candidate]]:
        """What every ``adopt:`` of the stack names (concurrently), and the named keys that
        already carry their block's tags."""
        blocks = [k for k in self.stack.keys if k.adopt is not None]
        answers = run_concurrently(
            lambda block: self.resolve_adoption(block, account_id=account_id),
            blocks,
            self.clients.parallelism,
        )
        targets = sorted((t for t, _ in answers), key=lambda t: t.name)
        return targets, [c for _, c in answers if c is not None]

    # ---- discovery ----

    def discover(self) -> list[_Candidate] | None:
        """Keys RGTA lists with this stack's tag; None when RGTA cannot be used."""
        try:
            mappings = paginate(
                self.clients.tagging,
                "GetResources",
                "ResourceTagMappingList",
                page_size=100,
                ResourceTypeFilters=["kms:key"],
                TagFilters=[{"Key": TAG_STACK, "Values": [self.stack.name]}],
            )
        except KmsplanError as exc:
            self.warnings.add(
                f"tag discovery unavailable ({_short(exc)}); listing every key of the Region "
                "instead (slower; allow tag:GetResources to avoid this)"
            )
            return None
        candidates = []
        for mapping in mappings:
            arn = str(mapping.get("ResourceARN", ""))
            if ":key/" in arn:
                candidates.append(_Candidate(key_id=arn.rsplit("/", 1)[1]))
        return candidates

    def scan(self, *, exclude: Collection[str]) -> list[_ReadKey]:
        """Every key of the Region not in `exclude`, by its authoritative tags."""
        listed = paginate(self.clients.kms, "ListKeys", "Keys", page_size=1000)
        endpoint = self.clients.kms.meta.endpoint_url
        key_ids = [str(require(k, "ListKeys", "KeyId", endpoint=endpoint)) for k in listed]
        key_ids = [key_id for key_id in key_ids if key_id not in exclude]
        unreadable: list[str] = []

        def tags_of(key_id: str) -> _Candidate | None:
            try:
                tags = self._tags(key_id)
            except AwsError as exc:
                if exc.code == NOT_FOUND:
                    return None
                if is_access_denied(exc):
                    unreadable.append(key_id)
                    return None
                raise
            if dict(tags).get(TAG_STACK) != self.stack.name:
                return None
            return _Candidate(key_id=key_id, tags=tags)

        tagged = run_concurrently(tags_of, key_ids, self.clients.parallelism)
        if unreadable:
            self.warnings.add(
                f"could not read the tags of {len(unreadable)} key(s) (access denied), so "
                f"cannot tell whether they belong to stack {self.stack.name}: "
                + ", ".join(sorted(unreadable)[:10])
            )
        return self.read_candidates([c for c in tagged if c is not None])

    # ---- reading keys ----

    def read_candidates(self, candidates: Iterable[_Candidate]) -> list[_ReadKey]:
        results = run_concurrently(self._read_key, candidates, self.clients.parallelism)
        return [r for r in results if r is not None]

    def tags(self, key_id: str) -> Tags:
        return self._tags(key_id)

    def _tags(self, key_id: str) -> Tags:
        items = paginate(self.clients.kms, "ListResourceTags", "Tags", page_size=50, KeyId=key_id)
        endpoint = self.clients.kms.meta.endpoint_url
        return tuple(
            sorted(
                (
                    str(require(t, "ListResourceTags", "TagKey", endpoint=endpoint)),
                    str(t.get("TagValue", "")),
                )
                for t in items
            )
        )

    def _read_key(self, candidate: _Candidate) -> _ReadKey | None:
        kms = self.clients.kms
        key_id = candidate.key_id
        try:
            tags = candidate.tags if candidate.tags is not None else self._tags(key_id)
            tag_map = dict(tags)
            if tag_map.get(TAG_STACK) != self.stack.name:
                return None  # RGTA's index was stale: the key left the stack
            name = tag_map.get(TAG_KEY)
            if not name:
                self.warnings.add(
                    f"key {key_id} is tagged {TAG_STACK}={self.stack.name} but has no "
                    f"{TAG_KEY} tag; ignored"
                )
                return None
            if not is_key_name(name):
                self.warnings.add(invalid_name_warning(key_id, self.stack.name, name))
                return None
            metadata = _metadata(call(kms, "DescribeKey", KeyId=key_id), kms.meta.endpoint_url)
            if metadata.get("KeyManager") == "AWS":
                return None  # AWS managed keys are never managed, even if tagged
            return self._read_body(name, metadata, tags)
        except AwsError as exc:
            if exc.code == NOT_FOUND:
                return None  # deleted since it was listed
            raise

    def _read_body(self, name: str, metadata: Mapping[str, Any], tags: Tags) -> _ReadKey:
        """The rest of a key whose tags and metadata are read: policy, rotation, grants."""
        kms = self.clients.kms
        key_id = str(metadata["KeyId"])
        policy_text = str(
            call(kms, "GetKeyPolicy", KeyId=key_id, PolicyName="default").get("Policy") or ""
        )
        rotation = self._rotation(key_id, metadata)
        grants = paginate(kms, "ListGrants", "Grants", page_size=100, KeyId=key_id)
        key = build_key(
            name=name,
            metadata=metadata,
            tags=tags,
            policy_text=policy_text,
            rotation=rotation,
            grants=grants,
            window_days=self._window_days(name),
        )
        return _ReadKey(key=key, created=_created(metadata.get("CreationDate")))

    # ---- adoption ----

    def resolve_adoption(
        self, block: Key, *, account_id: str
    ) -> tuple[AdoptTarget, _Candidate | None]:
        """What ``adopt:`` of `block` names: DescribeKey, then the key's tags; the key is
        read in full (as `block.name`) only when no stack owns it. Also the key as a
        candidate of the stack when it already carries this block's tags (the adoption was
        applied: tag discovery may not show it yet)."""
        ref = str(block.adopt)
        target = AdoptTarget(name=block.name, ref=ref)
        if _names_elsewhere(ref, account_id=account_id, region=self.clients.region):
            return target, None  # never read: the plan refuses it for its place
        kms = self.clients.kms
        try:
            answer = call(kms, "DescribeKey", KeyId=ref)
        except AwsError as exc:
            if exc.code == NOT_FOUND:
                return target, None
            raise
        metadata = _metadata(answer, kms.meta.endpoint_url)
        key_id = str(metadata["KeyId"])
        target = dataclasses.replace(target, key_id=key_id, arn=metadata.get("Arn"))
        # alias/aws/* names only AWS managed keys (some emulators report them as customer's).
        if metadata.get("KeyManager") == "AWS" or ref.startswith(AWS_ALIAS_PREFIX):
            return dataclasses.replace(target, aws_managed=True), None
        tags = self._tags(key_id)
        tag_map = dict(tags)
        owner_stack = tag_map.get(TAG_STACK)
        owner_key = tag_map.get(TAG_KEY)
        if owner_key is not None and not is_key_name(owner_key):
            owner_key = None  # a name no manifest can declare: the block may take the key
        target = dataclasses.replace(target, owner_stack=owner_stack, owner_key=owner_key)
        if owner_stack == self.stack.name and owner_key == block.name:
            return target, _Candidate(key_id=key_id, tags=tags)
        if owner_stack is not None and (owner_stack != self.stack.name or owner_key):
            return target, None  # another stack's or another block's: not read further
        try:
            read = self._read_body(block.name, metadata, tags)
        except AwsError as exc:
            if exc.code == NOT_FOUND:
                return AdoptTarget(name=block.name, ref=ref), None  # deleted meanwhile
            raise
        return dataclasses.replace(target, key=read.key), None

    def _rotation(self, key_id: str, metadata: Mapping[str, Any]) -> Rotation:
        if not kms_can_rotate(metadata):
            return Rotation(enabled=False)
        try:
            answer = call(self.clients.kms, "GetKeyRotationStatus", KeyId=key_id)
        except AwsError as exc:
            if exc.code != "KMSInvalidStateException":
                raise
            self.warnings.add(f"rotation status of key {key_id} unavailable: {exc.message}")
            return Rotation(enabled=False)
        period = answer.get("RotationPeriodInDays")
        return Rotation(
            enabled=bool(answer.get("KeyRotationEnabled")),
            period_days=int(period) if period is not None else None,
        )

    def _window_days(self, name: str) -> int:
        # The pending window is not observable on a live key; use what the manifest says,
        # so it never shows as a difference.
        desired = self.stack.key(name)
        return desired.deletion.window_days if desired else self.stack.default_window_days


def read_key_details(
    clients: AwsClients, stack: Stack, *, name: str, metadata: Mapping[str, Any], tags: Tags
) -> Key:
    """A key whose DescribeKey metadata and tags are read, completed like a managed key of
    `stack` named `name`: policy, rotation and grants (for `kmsplan import`)."""
    return _Reader(clients, stack)._read_body(name, metadata, tags).key


def key_metadata(clients: AwsClients, answer: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeKey's KeyMetadata, checked like the reader checks it."""
    return _metadata(answer, clients.kms.meta.endpoint_url)


def key_tags(clients: AwsClients, key_id: str) -> Tags:
    """A key's tags (ListResourceTags), sorted."""
    return _Reader(clients, Stack(name="")).tags(key_id)


def alias_targets(aliases: Iterable[Mapping[str, Any]]) -> tuple[AliasTarget, ...]:
    """Customer aliases (alias/aws/* dropped) from a ListAliases listing."""
    return _alias_targets(aliases)


def with_aliases(key: Key, targets: Iterable[AliasTarget]) -> Key:
    """`key` with the names of the aliases in `targets` that point at it."""
    return _with_aliases(key, targets)


def _names_elsewhere(ref: str, *, account_id: str, region: str) -> bool:
    """Whether `ref` is a key ARN of another account or Region."""
    parts = ref.split(":")
    return len(parts) == 6 and parts[0] == "arn" and (parts[4], parts[3]) != (account_id, region)


def _metadata(answer: Mapping[str, Any], endpoint: str | None) -> dict[str, Any]:
    """DescribeKey's KeyMetadata, with the KeyId every use of it relies on."""
    metadata = require(answer, "DescribeKey", "KeyMetadata", endpoint=endpoint)
    if not isinstance(metadata, dict):
        raise KmsplanError(
            f"DescribeKey: the endpoint {endpoint} did not answer like AWS "
            f"(KeyMetadata is not an object); {ENDPOINT_HINT}"
        )
    require(metadata, "DescribeKey", "KeyId", endpoint=endpoint)
    return metadata


# ---- pure conversions (no AWS calls) ----


@functools.cache
def _key_name_rule() -> tuple[re.Pattern[str], str]:
    """The manifest's rule for a key's logical name (the schema's), and its wording."""
    pattern = str(manifest_schema()["properties"]["keys"]["propertyNames"]["pattern"])
    return re.compile(pattern), PATTERN_TEXT[pattern]


def is_key_name(name: str) -> bool:
    """Whether a manifest could declare a key of this name (and so could ever manage it)."""
    return _key_name_rule()[0].fullmatch(name) is not None


def invalid_name_warning(key_id: str, stack: str, name: str) -> str:
    """A key of the stack whose name no manifest can declare: it is treated as a key outside
    the stack (never changed, never deleted), and the user is told how to fix its tag."""
    shown = json.dumps(name)  # quoted and escaped: a tag value may hold anything
    return (
        f"key {key_id} is tagged {TAG_STACK}={stack} but its {TAG_KEY} tag {shown} is not a "
        f"valid key name ({_key_name_rule()[1]}), so no manifest can declare it: it is left "
        f"alone as a key outside the stack. To manage it as key NAME: aws kms tag-resource "
        f"--key-id {key_id} --tags TagKey={TAG_KEY},TagValue=NAME; to release it from the "
        f"stack: aws kms untag-resource --key-id {key_id} --tag-keys {TAG_STACK} {TAG_KEY}"
    )


def kms_can_rotate(metadata: Mapping[str, Any]) -> bool:
    """Automatic rotation exists only for symmetric encryption keys with KMS-made material
    outside custom key stores."""
    spec = metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec")
    return kmsspec.can_rotate(
        spec or kmsspec.SYMMETRIC_DEFAULT,
        metadata.get("KeyUsage") or kmsspec.ENCRYPT_DECRYPT,
        metadata.get("Origin") or kmsspec.ORIGIN_AWS_KMS,
    ) and not metadata.get("CustomKeyStoreId")


def build_key(
    *,
    name: str,
    metadata: Mapping[str, Any],
    tags: Tags,
    policy_text: str,
    rotation: Rotation,
    grants: Iterable[Mapping[str, Any]],
    window_days: int,
) -> Key:
    """A live Key from DescribeKey metadata, ListResourceTags, GetKeyPolicy and ListGrants."""
    tag_map = dict(tags)
    try:
        policy: Any = json.loads(policy_text)
    except ValueError:
        policy = None
    state_value = metadata.get("KeyState")
    try:
        state = KeyState(state_value) if state_value else None
    except ValueError:
        state = None
    owned: list[Grant] = []
    foreign: list[Grant] = []
    for entry in grants:
        grant = grant_from_api(entry)
        if grant.name.startswith(GRANT_PREFIX):
            owned.append(_replace_name(grant, grant.name[len(GRANT_PREFIX) :]))
        else:
            foreign.append(grant)
    return Key(
        name=name,
        description=str(metadata.get("Description") or ""),
        spec=str(
            metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        ),
        # moto omits KeyUsage and MultiRegion unless they were passed to CreateKey.
        usage=str(metadata.get("KeyUsage") or "ENCRYPT_DECRYPT"),
        origin=str(metadata.get("Origin") or "AWS_KMS"),
        multi_region=bool(metadata.get("MultiRegion", False)),
        enabled=state_value == KeyState.ENABLED.value,
        rotation=rotation,
        deletion=Deletion(
            protected=deletion_protected(tag_map),
            # The window recorded on the key wins; a key from before the tag gets what the
            # manifest says (declared) or its defaults (block removed).
            window_days=recorded_window(tag_map) or window_days,
        ),
        tags=tuple((k, v) for k, v in tags if not k.startswith((TAG_PREFIX, AWS_TAG_PREFIX))),
        policy=policy if isinstance(policy, dict) else None,
        grants=tuple(sorted(owned, key=_grant_order)),
        key_id=str(metadata["KeyId"]),
        arn=str(metadata.get("Arn") or "") or None,
        state=state,
        deletion_date=_iso(metadata.get("DeletionDate")),
        policy_text=policy_text,
        foreign_grants=tuple(sorted(foreign, key=_grant_order)),
        live_tags=tags,
        primary_region=_primary_region(metadata),
        replica_regions=_replica_regions(metadata),
    )


def _primary_region(metadata: Mapping[str, Any]) -> str | None:
    config = metadata.get("MultiRegionConfiguration")
    if not isinstance(config, Mapping) or not isinstance(config.get("PrimaryKey"), Mapping):
        return None
    region = config["PrimaryKey"].get("Region")
    return str(region) if region else None


def _replica_regions(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    config = metadata.get("MultiRegionConfiguration")
    replicas = config.get("ReplicaKeys") if isinstance(config, Mapping) else None
    if not isinstance(replicas, list):
        return ()
    return tuple(
        sorted({str(r["Region"]) for r in replicas if isinstance(r, Mapping) and r.get("Region")})
    )


def grant_from_api(entry: Mapping[str, Any]) -> Grant:
    """A Grant from a ListGrants entry, with its full KMS name."""
    constraints = entry.get("Constraints") or {}
    subset = constraints.get("EncryptionContextSubset")
    equals = constraints.get("EncryptionContextEquals")
    return Grant(
        name=str(entry.get("Name") or ""),
        grantee=str(entry.get("GranteePrincipal") or ""),
        operations=tuple(sorted(str(op) for op in entry.get("Operations") or ())),
        retiring_principal=entry.get("RetiringPrincipal") or None,
        constraints=(
            GrantConstraints(
                encryption_context_subset=_pairs(subset) if subset is not None else None,
                encryption_context_equals=_pairs(equals) if equals is not None else None,
            )
            if subset is not None or equals is not None
            else None
        ),
        grant_id=entry.get("GrantId"),
    )


def _pairs(context: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in context.items()))


def _replace_name(grant: Grant, name: str) -> Grant:
    return Grant(
        name=name,
        grantee=grant.grantee,
        operations=grant.operations,
        retiring_principal=grant.retiring_principal,
        constraints=grant.constraints,
        grant_id=grant.grant_id,
    )


def _grant_order(grant: Grant) -> tuple[str, str]:
    return grant.name, grant.grant_id or ""


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def _created(value: Any) -> str:
    """A CreationDate as UTC ISO 8601 with microseconds, so that dates compare as strings."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    return str(value or "")


def _short(exc: KmsplanError) -> str:
    if isinstance(exc, AwsError):
        return f"{exc.code}: {exc.message}" if exc.message else exc.code
    return str(exc)


def tagged_keys(clients: AwsClients, stack: str, name: str) -> list[str]:
    """The ids of the keys the tag index lists with ``kmsplan:stack=stack`` and
    ``kmsplan:key=name`` (one RGTA query; the index lags, so callers read each key's own tags
    before trusting it). Raises KmsplanError when the index cannot be asked."""
    mappings = paginate(
        clients.tagging,
        "GetResources",
        "ResourceTagMappingList",
        page_size=100,
        ResourceTypeFilters=["kms:key"],
        TagFilters=[{"Key": TAG_STACK, "Values": [stack]}, {"Key": TAG_KEY, "Values": [name]}],
    )
    arns = [str(m.get("ResourceARN", "")) for m in mappings]
    return [arn.rsplit("/", 1)[1] for arn in arns if ":key/" in arn]


def _dedupe(found: Iterable[_ReadKey], stack: str, warnings: _Warnings) -> list[Key]:
    """The stack's keys, each once, with its CreationDate. Several live keys may carry one
    name (a race of two applies, or tags copied by hand): all are returned, and the plan
    resolves them (the differ's `match_keys`). A key pending deletion beside a live one with
    the same name is reported and left out: it is on its way out."""
    by_name: dict[str, list[_ReadKey]] = {}
    seen: set[str] = set()
    for read in found:
        if read.key.key_id in seen:
            continue
        seen.add(read.key.key_id or "")
        by_name.setdefault(read.key.name, []).append(read)
    keys: list[Key] = []
    for name, reads in sorted(by_name.items()):
        reads.sort(key=lambda r: (_pending(r.key), r.created, r.key.key_id or ""))
        kept = [r for r in reads if not _pending(r.key)] or reads[:1]
        ignored = [r for r in reads if r not in kept]
        if ignored:
            warnings.add(
                f"{len(reads)} keys carry {TAG_STACK}={stack}, {TAG_KEY}={name}: using "
                f"{', '.join(r.key.key_id or '' for r in kept)}, ignoring "
                f"{', '.join(r.key.key_id or '' for r in ignored)}"
            )
        keys.extend(dataclasses.replace(r.key, created=r.created or None) for r in kept)
    return keys


def _pending(key: Key) -> bool:
    return key.state is not None and key.state.is_pending_deletion


def _alias_targets(aliases: Iterable[Mapping[str, Any]]) -> tuple[AliasTarget, ...]:
    targets = [
        AliasTarget(
            name=str(require(a, "ListAliases", "AliasName")),
            target_key_id=a.get("TargetKeyId") or None,
        )
        for a in aliases
        if not str(a.get("AliasName", "")).startswith(AWS_ALIAS_PREFIX)
    ]
    return tuple(sorted(targets, key=lambda t: t.name))


def _with_aliases(key: Key, targets: Iterable[AliasTarget]) -> Key:
    names = tuple(sorted(t.name for t in targets if t.target_key_id == key.key_id))
    return dataclasses.replace(key, aliases=names) if names else key


# ---- GetKeyLastUsage ----


def _last_usages(
    clients: AwsClients, keys: Iterable[Key], candidates: Collection[str]
) -> dict[str, LastUsage]:
    names = set(candidates)
    wanted = [k for k in keys if k.name in names and k.key_id]
    answers = run_concurrently(
        lambda k: last_usage(clients, str(k.key_id)), wanted, clients.parallelism
    )
    return {k.name: a for k, a in zip(wanted, answers, strict=True)}


def last_usage(clients: AwsClients, key_id: str) -> LastUsage:
    """GetKeyLastUsage for one key, never raising: any failure is an unknown answer."""
    client = clients.kms_no_retry
    if "GetKeyLastUsage" not in client.meta.service_model.operation_names:
        return LastUsage(
            known=False,
            detail=f"GetKeyLastUsage is not available in this botocore ({botocore.__version__})",
        )
    try:
        answer = call(client, "GetKeyLastUsage", KeyId=key_id)
    except KmsplanError as exc:
        return LastUsage(known=False, detail=f"GetKeyLastUsage failed: {_short(exc)}")
    tracking_start = _iso(answer.get("TrackingStartDate"))
    used = (answer.get("KeyLastUsage") or {}).get("Timestamp")
    if used is not None:
        return LastUsage(known=True, last_used=_iso(used), tracking_start=tracking_start)
    created = answer.get("KeyCreationDate")
    tracked_since = answer.get("TrackingStartDate")
    if created is not None and tracked_since is not None and created < tracked_since:
        detail = (
            f"no use recorded since tracking began ({tracking_start}); earlier use is not known"
        )
    else:
        detail = "never used since it was created"
    return LastUsage(known=True, last_used=None, tracking_start=tracking_start, detail=detail)


# ---- IAM principal checks ----


def _check_principals(
    clients: AwsClients, account_id: str, arns: Collection[str], warnings: _Warnings
) -> dict[str, bool | None]:
    wanted = sorted(set(arns))
    known = clients.known_principals

    def check(arn: str) -> bool | None:
        def ask() -> bool | None:
            return principal_exists(clients, account_id, arn, warnings.add)

        return ask() if known is None else known.answer(account_id, arn, ask)

    answers = run_concurrently(check, wanted, clients.parallelism)
    return dict(zip(wanted, answers, strict=True))


def principal_exists(
    clients: AwsClients, account_id: str, arn: str, warn: Callable[[str], None] | None = None
) -> bool | None:
    """True/False for a same-account IAM role or user (or the account root); None when it
    cannot be told (another account, another kind of principal, no permission)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or parts[4] != account_id:
        return None
    resource = parts[5]
    if resource == "root":
        return True
    kind, _, path_and_name = resource.partition("/")
    name = path_and_name.rsplit("/", 1)[-1]
    if kind == "role":
        operation, params = "GetRole", {"RoleName": name}
    elif kind == "user":
        operation, params = "GetUser", {"UserName": name}
    else:
        return None
    try:
        call(clients.iam, operation, **params)
    except KmsplanError as exc:
        if isinstance(exc, AwsError) and exc.code == "NoSuchEntity":
            return False
        if warn is not None:
            warn(f"cannot check whether {arn} exists: {_short(exc)}")
        return None
    return True
