"""Fixes that make the local emulator (moto 5.2) answer multi-Region key calls as KMS does.

moto replicates a key by copying the primary's object and sharing its dictionaries, so:

1. after ReplicateKey the primary reports ``MultiRegionKeyType: REPLICA`` (the configuration
   dictionary is shared, and DescribeKey of the replica rewrites it);
2. the replica ignores ``Description``, ``Policy`` and ``Tags`` (it copies the primary's
   description and policy and has no tags; the answer has no ``ReplicaTags``);
3. the primary's aliases (and grants) show up in the replica Region (shared dictionaries);
4. replicating twice into one Region, or into the primary's own Region, is accepted;
5. replicating a single-Region key, or a replica, fails with HTTP 500;
6. UpdatePrimaryRegion is not implemented.

Each fix below replaces one moto method with one that follows the KMS API Reference
(ReplicateKey, UpdatePrimaryRegion). ``install()`` puts them in place (twice does no harm);
the emulator (kmsplan.local_kms) calls it before it starts, so ``kmsplan local-kms``,
``kmsplan demo`` and the test suite all see the fixed behaviour.

What stays different from KMS: a new replica is ``Enabled`` as soon as ReplicateKey returns
(the answer says ``Creating``, as KMS's does, but the emulator has no clock), the keys are
not ``Updating`` after UpdatePrimaryRegion, and a primary scheduled for deletion while it has
replicas goes to ``PendingDeletion``, not ``PendingReplicaDeletion``. kmsplan itself never
works around the emulator.
"""

from __future__ import annotations

import json
from copy import copy
from typing import Any


def install() -> None:
    """Put the fixes in place (in moto's classes, for the whole process). Needs moto."""
    from moto.kms.models import KmsBackend
    from moto.kms.responses import KmsResponse

    KmsBackend.replicate_key = _backend_replicate_key  # type: ignore[method-assign]
    KmsResponse.replicate_key = _response_replicate_key  # type: ignore[method-assign]
    KmsBackend.update_primary_region = _backend_update_primary_region  # type: ignore[attr-defined]
    KmsResponse.update_primary_region = _response_update_primary_region  # type: ignore[attr-defined]


def _error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(code, message)


def _backend_of(account_id: str, region: str) -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[account_id][region]


def _backend_replicate_key(
    self: Any,
    key_id: str,
    replica_region: str,
    description: str = "",
    policy: str | None = None,
    tags: list[dict[str, str]] | None = None,
) -> Any:
    """Fixes 1-5: the replica is a key of its own (own configuration, aliases, grants,
    description, policy, tags); only a primary can be replicated, once per Region."""
    primary = self.keys[self.get_key_id(key_id)]
    if not primary.multi_region:
        raise _error(
            "UnsupportedOperationException",
            f"{primary.arn} is not a multi-Region key. Only a multi-Region primary key "
            "can be replicated.",
        )
    config = primary.multi_region_configuration
    if config["MultiRegionKeyType"] != "PRIMARY":
        raise _error(
            "UnsupportedOperationException",
            f"{primary.arn} is a multi-Region replica key. Only a multi-Region primary key "
            "can be replicated.",
        )
    taken = {config["PrimaryKey"]["Region"]} | {r["Region"] for r in config["ReplicaKeys"]}
    if replica_region in taken:
        raise _error(
            "AlreadyExistsException",
            f"The multi-Region key {primary.id} already has a key in {replica_region}.",
        )
    target = _backend_of(self.account_id, replica_region)
    replica = copy(primary)
    replica.region = replica_region
    replica.arn = primary.arn.replace(f":{self.region_name}:", f":{replica_region}:", 1)
    replica.description = description or ""
    replica.policy = policy or replica.generate_default_policy()
    replica.key_state = "Enabled"
    replica.enabled = True
    replica.deletion_date = None
    replica.aliases = {}
    replica.grants = {}
    replica.rotations = []
    replica.multi_region_configuration = {
        "MultiRegionKeyType": "REPLICA",
        "PrimaryKey": dict(config["PrimaryKey"]),
        "ReplicaKeys": config["ReplicaKeys"],  # every key of the set lists all replicas
    }
    # The tagging service directly: moto's tag_resource changed its signature within 5.x.
    target.tagger.tag_resource(replica.id, tags or [])
    target.keys[replica.id] = replica
    config["ReplicaKeys"].append({"Arn": replica.arn, "Region": replica_region})
    return replica


def _response_replicate_key(self: Any) -> str:
    """Fixes 2 and 5 on the wire: pass Description, Policy and Tags on; answer with the
    replica's own metadata (KeyState Creating, as KMS answers), policy and tags."""
    key_id = self._get_param("KeyId")
    self._validate_key_id(key_id)
    tags = self._get_param("Tags") or []
    replica = self.kms_backend.replicate_key(
        key_id,
        self._get_param("ReplicaRegion"),
        description=self._get_param("Description") or "",
        policy=self._get_param("Policy"),
        tags=tags,
    )
    metadata = replica.to_dict()["KeyMetadata"]
    metadata["KeyState"] = "Creating"
    metadata["Enabled"] = False
    return json.dumps(
        {"ReplicaKeyMetadata": metadata, "ReplicaPolicy": replica.policy, "ReplicaTags": tags}
    )


def _backend_update_primary_region(self: Any, key_id: str, primary_region: str) -> None:
    """Fix 6: the replica in ``primary_region`` becomes the primary, the primary a replica."""
    key = self.keys[self.get_key_id(key_id)]
    if not key.multi_region:
        raise _error("UnsupportedOperationException", f"{key.arn} is not a multi-Region key.")
    config = key.multi_region_configuration
    if config["MultiRegionKeyType"] != "PRIMARY":
        raise _error(
            "UnsupportedOperationException",
            f"{key.arn} is not a multi-Region primary key.",
        )
    replicas = config["ReplicaKeys"]
    chosen = [r for r in replicas if r["Region"] == primary_region]
    if not chosen:
        raise _error(
            "NotFoundException",
            f"The multi-Region key {key.id} has no replica in {primary_region}.",
        )
    new_primary = _backend_of(self.account_id, primary_region).keys[key.id]
    replicas.remove(chosen[0])
    replicas.append({"Arn": key.arn, "Region": self.region_name})
    primary_ref = {"Arn": new_primary.arn, "Region": primary_region}
    for region in {r["Region"] for r in replicas} | {primary_region}:
        member = _backend_of(self.account_id, region).keys[key.id]
        member.multi_region_configuration = {
            "MultiRegionKeyType": "PRIMARY" if region == primary_region else "REPLICA",
            "PrimaryKey": dict(primary_ref),
            "ReplicaKeys": replicas,
        }


def _response_update_primary_region(self: Any) -> str:
    key_id = self._get_param("KeyId")
    self._validate_cmk_id(key_id)
    self.kms_backend.update_primary_region(key_id, self._get_param("PrimaryRegion"))
    return "{}"
