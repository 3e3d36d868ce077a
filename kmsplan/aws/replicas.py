"""Reading the replicas of a stack's multi-Region keys, in every Region that holds one.

A replica shares its primary's key id, so it is found by that id in its Region: no tag
discovery, and a replica whose ReplicateKey answer was lost is found all the same. The Regions
read are the ones the manifest declares and the ones the primary lists (replicas no longer
declared, to be deleted). Each Region is read with clients of its own (its own quotas), all
Regions at once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from kmsplan.aws.client import AwsClients, call, paginate, run_concurrently
from kmsplan.aws.reader import NOT_FOUND, _alias_targets, _metadata, last_usage
from kmsplan.errors import AwsError
from kmsplan.model import (
    TAG_PREFIX,
    AliasTarget,
    Key,
    KeyState,
    LastUsage,
    Placement,
    Replica,
    Stack,
    replica_usage_name,
)

_AWS_TAG_PREFIX = "aws:"


def replica_regions(stack: Stack, keys: Iterable[Key]) -> dict[str, list[Key]]:
    """Region -> the live multi-Region keys to look for there."""
    wanted: dict[str, list[Key]] = {}
    for key in keys:
        if not key.multi_region or not key.key_id:
            continue
        desired = stack.key(key.name)
        regions = set(key.replica_regions)
        if desired is not None:
            regions |= {r.region for r in desired.replicas}
        for region in sorted(regions - {key.placement.region if key.placement else ""}):
            wanted.setdefault(region, []).append(key)
    return wanted


def read_replicas(
    clients: AwsClients, stack: Stack, keys: list[Key], *, account_id: str
) -> tuple[list[Key], dict[str, tuple[AliasTarget, ...]], dict[str, LastUsage]]:
    """`keys` with their live replicas; each replica Region's aliases; the last use of each
    replica the manifests no longer declare (for the deletion gate)."""
    by_region = replica_regions(stack, keys)
    regions = sorted(by_region)
    answers = run_concurrently(
        lambda region: _read_region(
            clients.for_region(region), stack, by_region[region], account_id=account_id
        ),
        regions,
        max(1, min(len(regions), clients.parallelism)),
    )
    found: dict[str, list[Replica]] = {}
    aliases: dict[str, tuple[AliasTarget, ...]] = {}
    usage: dict[str, LastUsage] = {}
    for region, (replicas, region_aliases, region_usage) in zip(regions, answers, strict=True):
        aliases[region] = region_aliases
        usage.update(region_usage)
        for name, replica in replicas.items():
            found.setdefault(name, []).append(replica)
    out = [
        dataclasses.replace(k, replicas=tuple(sorted(found[k.name], key=lambda r: r.region)))
        if k.name in found
        else k
        for k in keys
    ]
    return out, aliases, usage


def _read_region(
    clients: AwsClients, stack: Stack, keys: list[Key], *, account_id: str
) -> tuple[dict[str, Replica], tuple[AliasTarget, ...], dict[str, LastUsage]]:
    targets = _alias_targets(paginate(clients.kms, "ListAliases", "Aliases", page_size=100))
    placement = Placement(account_id=account_id, region=clients.region)
    read = run_concurrently(
        lambda key: _read_replica(clients, key, targets, placement), keys, clients.parallelism
    )
    replicas = {k.name: r for k, r in zip(keys, read, strict=True) if r is not None}
    usage: dict[str, LastUsage] = {}
    for name, replica in replicas.items():
        desired = stack.key(name)
        if desired is None or desired.replica(clients.region) is None:
            usage[replica_usage_name(name, clients.region)] = last_usage(
                clients, str(replica.arn or name)
            )
    return replicas, targets, usage


def _read_replica(
    clients: AwsClients, key: Key, targets: Iterable[AliasTarget], placement: Placement
) -> Replica | None:
    kms = clients.kms
    key_id = str(key.key_id)
    try:
        metadata = _metadata(call(kms, "DescribeKey", KeyId=key_id), kms.meta.endpoint_url)
        config = metadata.get("MultiRegionConfiguration") or {}
        if config.get("MultiRegionKeyType") != "REPLICA":
            return None  # the primary itself (its Region moved here), not a replica
        tags = tuple(
            sorted(
                (str(t["TagKey"]), str(t.get("TagValue", "")))
                for t in paginate(kms, "ListResourceTags", "Tags", page_size=50, KeyId=key_id)
            )
        )
        policy_text = str(
            call(kms, "GetKeyPolicy", KeyId=key_id, PolicyName="default").get("Policy") or ""
        )
    except AwsError as exc:
        if exc.code == NOT_FOUND:
            return None
        raise
    return build_replica(
        region=clients.region,
        metadata=metadata,
        tags=tags,
        policy_text=policy_text,
        aliases=tuple(sorted(t.name for t in targets if t.target_key_id == key_id)),
        placement=placement,
    )


def build_replica(
    *,
    region: str,
    metadata: Mapping[str, Any],
    tags: tuple[tuple[str, str], ...],
    policy_text: str,
    aliases: tuple[str, ...],
    placement: Placement | None = None,
) -> Replica:
    """A live Replica from DescribeKey metadata, ListResourceTags, GetKeyPolicy and the
    Region's aliases that point at it."""
    try:
        policy: Any = json.loads(policy_text)
    except ValueError:
        policy = None
    state_value = metadata.get("KeyState")
    try:
        state = KeyState(state_value) if state_value else None
    except ValueError:
        state = None
    return Replica(
        region=region,
        description=str(metadata.get("Description") or ""),
        # A replica still Creating becomes Enabled by itself: it is not a disabled replica.
        enabled=state_value in (KeyState.ENABLED.value, KeyState.CREATING.value),
        aliases=aliases,
        tags=tuple((k, v) for k, v in tags if not k.startswith((TAG_PREFIX, _AWS_TAG_PREFIX))),
        policy=policy if isinstance(policy, dict) else None,
        arn=str(metadata.get("Arn") or "") or None,
        state=state,
        deletion_date=str(metadata["DeletionDate"]) if metadata.get("DeletionDate") else None,
        policy_text=policy_text,
        live_tags=tags,
        placement=placement,
    )
