"""What `kmsplan import` reads: existing customer managed keys that no stack owns, each read
like a managed key (metadata, tags, policy, rotation, grants, aliases). Read-only: nothing
here writes to KMS.

API calls: 1 STS GetCallerIdentity (unless the caller knows the account), ceil(A/100)
ListAliases; per key DescribeKey, ListResourceTags, GetKeyPolicy, GetKeyRotationStatus (keys
KMS can rotate), ListGrants. With ``--all``, ceil(K/1000) ListKeys and a DescribeKey for
every key of the Region.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from kmsplan import kmsspec
from kmsplan.aws.client import AwsClients, call, caller_identity, paginate, run_concurrently
from kmsplan.aws.reader import (
    AWS_ALIAS_PREFIX,
    NOT_FOUND,
    alias_targets,
    key_metadata,
    key_tags,
    read_key_details,
    with_aliases,
)
from kmsplan.errors import AwsError
from kmsplan.model import TAG_KEY, TAG_STACK, Key, Stack


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory:
    """The keys to import, named by key id until the manifest writer names them."""

    account_id: str
    region: str
    keys: tuple[Key, ...] = ()  # in the order asked for (--all: by key id)
    refused: tuple[str, ...] = ()  # a KEYREF that cannot be imported, and why
    skipped: tuple[str, ...] = ()  # keys --all leaves out, and why


@dataclass(frozen=True, slots=True, kw_only=True)
class _Found:
    key: Key | None = None
    refused: str | None = None
    skipped: str | None = None


def read_inventory(
    clients: AwsClients,
    refs: Sequence[str],
    *,
    every_unowned: bool,
    stack: str,
    account_id: str | None = None,
) -> Inventory:
    """The keys `refs` name (key ids, key ARNs, alias names) and, with `every_unowned`, every
    customer managed key of the Region that no stack owns. `account_id`: the clients'
    account, when the caller already asked STS."""
    if account_id is None:
        account_id, _ = caller_identity(clients)
    aliases = alias_targets(paginate(clients.kms, "ListAliases", "Aliases", page_size=100))
    home = Stack(name=stack)

    def by_ref(ref: str) -> _Found:
        return _read(clients, home, ref, account_id=account_id, asked=True)

    found = run_concurrently(by_ref, list(dict.fromkeys(refs)), clients.parallelism)
    if every_unowned:
        chosen = {f.key.key_id for f in found if f.key is not None}
        listed = paginate(clients.kms, "ListKeys", "Keys", page_size=1000)
        others = sorted(str(k["KeyId"]) for k in listed if k.get("KeyId") not in chosen)

        def by_id(key_id: str) -> _Found:
            return _read(clients, home, key_id, account_id=account_id, asked=False)

        found += run_concurrently(by_id, others, clients.parallelism)
    keys = [with_aliases(f.key, aliases) for f in found if f.key is not None]
    unique = list({k.key_id: k for k in keys}.values())  # two refs to one key: once
    return Inventory(
        account_id=account_id,
        region=clients.region,
        keys=tuple(unique),
        refused=tuple(f.refused for f in found if f.refused),
        skipped=tuple(f.skipped for f in found if f.skipped),
    )


def _read(clients: AwsClients, home: Stack, ref: str, *, account_id: str, asked: bool) -> _Found:
    """One key: read, refused (a KEYREF that cannot be imported) or skipped (--all)."""
    where = f"account {account_id}, Region {clients.region}"
    parts = ref.split(":")
    if len(parts) == 6 and parts[0] == "arn":
        account, region = parts[4], parts[3]
        if (account, region) != (account_id, clients.region):
            return _Found(
                refused=f"{ref}: a key of account {account}, Region {region}; this import "
                f"reads {where} (use --region, or credentials for that account)"
            )
    try:
        metadata = key_metadata(clients, call(clients.kms, "DescribeKey", KeyId=ref))
    except AwsError as exc:
        if exc.code != NOT_FOUND:
            raise
        return _Found(refused=f"{ref}: no such key in {where}")
    key_id = str(metadata["KeyId"])
    if metadata.get("KeyManager") == "AWS" or ref.startswith(AWS_ALIAS_PREFIX):
        if not asked:
            return _Found()
        return _Found(refused=f"{ref}: an AWS managed key (KeyManager=AWS); only AWS manages it")
    tags = key_tags(clients, key_id)
    owner = dict(tags).get(TAG_STACK)
    if owner is not None:
        name = dict(tags).get(TAG_KEY, "?")
        why = f"key {key_id} is key.{name} of stack {owner} already (its {TAG_STACK} tag)"
        if not asked:
            return _Found(skipped=why)
        return _Found(refused=f"{ref}: {why}; release it there first to import it")
    origin = metadata.get("Origin") or kmsspec.ORIGIN_AWS_KMS
    if origin != kmsspec.ORIGIN_AWS_KMS:
        why = f"key {key_id} has key material of origin {origin}; manifests declare AWS_KMS keys"
        return _Found(skipped=why) if not asked else _Found(refused=f"{ref}: {why}")
    state = metadata.get("KeyState")
    if not asked and state in ("PendingDeletion", "PendingReplicaDeletion"):
        return _Found(
            skipped=f"key {key_id} is pending deletion (name it to import it: adopting it "
            "cancels the deletion)"
        )
    try:
        key = read_key_details(clients, home, name=key_id, metadata=metadata, tags=tags)
    except AwsError as exc:
        if exc.code != NOT_FOUND:
            raise
        return _Found(refused=f"{ref}: no such key in {where}")  # deleted meanwhile
    return _Found(key=dataclasses.replace(key, placement=None))
