"""The emulated account: moto's server on 127.0.0.1 behind the latency/quota proxy.

`Emulator` runs both in the current process (the smoke test uses it that way).
`python -m bench.emulator` runs them in a process of their own, so that moto's request handling
and kmsplan's client code do not share one interpreter lock; it prints one JSON line
`{"endpoint": ...}` when ready and serves until its stdin closes.

Two changes to moto, both for the emulator's sake and neither visible to kmsplan:
- moto makes an RSA-2048 private key for *every* key, symmetric ones included (≈80 ms of CPU
  each; real KMS does no such thing for a symmetric key). Keys whose spec is not RSA/ECC share
  one pre-generated key here, so CreateKey is not bound by the emulator's key generation.
- Unmanaged keys (the rest of the account) are put straight into moto's backend
  (`/__bench/populate`), not through 5,000 API calls.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import urllib.request
from typing import Any

from bench.proxy import KmsProxy, ProxyConfig

ACCOUNT = "123456789012"  # moto's default account
# A second account: STS AssumeRole into a role ARN of it hands out credentials whose calls moto
# lands there (the proxy learns them from the answer and counts them against its quotas).
OTHER_ACCOUNT = "222233334444"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _share_symmetric_private_key() -> None:
    import moto.kms.models as kms_models
    from moto.kms.utils import KeySpec

    original = kms_models.generate_private_key  # type: ignore[attr-defined]
    shared: list[Any] = []
    lock = threading.Lock()
    asymmetric = {KeySpec.RSA_2048, KeySpec.RSA_3072, KeySpec.RSA_4096, *KeySpec.ecc_key_specs()}

    def generate_private_key(key_spec: str) -> Any:
        if key_spec in asymmetric:
            return original(key_spec)
        with lock:
            if not shared:
                shared.append(original(key_spec))
            return shared[0]

    kms_models.generate_private_key = generate_private_key  # type: ignore[attr-defined]


class Emulator:
    """moto server + proxy, both bound to 127.0.0.1. Call `stop()` when done."""

    def __init__(
        self,
        *,
        latency_ms: float = 20.0,
        quotas: dict[str, float] | None = None,
        upstream_port: int | None = None,
        share_symmetric_key: bool = True,
    ) -> None:
        """Start the proxy, and moto's server unless `upstream_port` names a moto server
        already running in this process (populate and seed write to this process's backend)."""
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
        if share_symmetric_key:
            _share_symmetric_private_key()
        self._moto: ThreadedMotoServer | None = None
        if upstream_port is None:
            upstream_port = _free_port()
            self._moto = ThreadedMotoServer(
                ip_address="127.0.0.1", port=upstream_port, verbose=False
            )
            self._moto.start()
        self.moto_port = upstream_port
        self.proxy = KmsProxy(
            ProxyConfig(
                upstream_host="127.0.0.1",
                upstream_port=upstream_port,
                latency_s=latency_ms / 1000,
                quotas=dict(quotas or {}),
            )
        )
        self.proxy.control["reset"] = self._reset
        self.proxy.control["populate"] = self._populate
        self.proxy.control["seed"] = self._seed
        self.proxy.start()

    @property
    def endpoint(self) -> str:
        return self.proxy.endpoint

    @property
    def moto_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def stop(self) -> None:
        self.proxy.stop()
        if self._moto is not None:
            self._moto.stop()

    def _reset(self, _: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.moto_endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
        self.proxy.control["reset-stats"]({})
        self.proxy.forget_accounts()
        return {"ok": True}

    def _populate(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create unmanaged keys (each with an alias and a tag) in the base account and
        Region, and the IAM roles in every account of `accounts` (default: the base one);
        warm up the tagging backend of every account and Region of `accounts` × `regions`."""
        from moto.iam.models import iam_backends
        from moto.kms.models import kms_backends

        kms = kms_backends[ACCOUNT][REGION]
        count = int(body.get("unmanaged_keys", 0))
        prefix = str(body.get("alias_prefix", "alias/other"))
        aliases_per_key = int(body.get("aliases_per_key", 1))
        for i in range(count):
            key = kms.create_key(
                None,
                "ENCRYPT_DECRYPT",
                "SYMMETRIC_DEFAULT",
                f"unmanaged {i}",
                [{"TagKey": "owner", "TagValue": "another-team"}],
            )
            for j in range(aliases_per_key):
                kms.create_alias(key.id, f"{prefix}/k{i:05d}" + (f"-{j}" if j else ""))
        accounts = [str(a) for a in body.get("accounts", [ACCOUNT])]
        regions = [str(r) for r in body.get("regions", [REGION])]
        trust = json.dumps({"Version": "2012-10-17", "Statement": []})
        roles = [str(r) for r in body.get("roles", [])]
        for account in accounts:
            iam = iam_backends[account]["aws"]
            for role in roles:
                iam.create_role(role, trust, "/", None, "", [], None)
        # moto builds the tagging backend (and the backends it consults) on its first use
        # after a reset: ~1 s that belongs to no real call. Pay it here, outside the timings.
        from moto.resourcegroupstaggingapi.models import resourcegroupstaggingapi_backends

        for account in accounts:
            for region in regions:
                resourcegroupstaggingapi_backends[account][region].get_resources(
                    resource_type_filters=["kms:key"],
                    tag_filters=[{"Key": "warm-up", "Values": ["-"]}],
                )
        return {"unmanaged_keys": count, "roles": len(roles)}

    def _seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """Run a plan's calls straight against moto's backend: managed keys exactly as an apply
        of that plan leaves them, without N CreateKey round trips at 5 per second.

        `calls` is a list of [change address, operation, params]; a param value
        {"$ref": address} is the KeyId the CreateKey of that change returned. `account` and
        `region` say where (default: the base account and Region).
        """
        from moto.kms.models import kms_backends

        kms = kms_backends[str(body.get("account", ACCOUNT))][str(body.get("region", REGION))]
        created: dict[str, str] = {}

        def resolve(value: Any) -> Any:
            if isinstance(value, dict) and set(value) == {"$ref"}:
                return created[value["$ref"]]
            return value

        done = 0
        for address, operation, raw in body.get("calls", []):
            p = {k: resolve(v) for k, v in raw.items()}
            if operation == "CreateKey":
                key = kms.create_key(
                    p.get("Policy"),
                    p.get("KeyUsage", "ENCRYPT_DECRYPT"),
                    p.get("KeySpec", "SYMMETRIC_DEFAULT"),
                    p.get("Description", ""),
                    p.get("Tags"),
                    bool(p.get("MultiRegion", False)),
                )
                created[address] = key.id
            elif operation == "EnableKeyRotation":
                kms.enable_key_rotation(p["KeyId"])
            elif operation == "CreateAlias":
                kms.create_alias(p["TargetKeyId"], p["AliasName"])
            elif operation == "CreateGrant":
                kms.create_grant(
                    p["KeyId"],
                    p["GranteePrincipal"],
                    p["Operations"],
                    p.get("Name", ""),
                    p.get("Constraints") or {},
                    p.get("RetiringPrincipal", ""),
                )
            elif operation == "PutKeyPolicy":
                kms.put_key_policy(p["KeyId"], p["Policy"])
            elif operation == "TagResource":
                kms.tag_resource(p["KeyId"], p["Tags"])
            elif operation == "UpdateKeyDescription":
                kms.update_key_description(p["KeyId"], p["Description"])
            else:
                raise ValueError(f"seed: unsupported operation {operation}")
            done += 1
        return {"calls": done, "keys": len(created)}


def control(endpoint: str, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call the proxy's control API: stats, reset-stats, reset, populate, configure."""
    req = urllib.request.Request(
        f"{endpoint}/__bench/{name}",
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=600) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    emulator = Emulator(latency_ms=args.latency_ms)
    print(json.dumps({"endpoint": emulator.endpoint}), flush=True)
    try:
        sys.stdin.read()  # the parent closes our stdin (or dies) when it is done
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
