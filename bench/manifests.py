"""Manifests for N managed keys, each with an alias, a policy, rotation, tags and a grant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

STACK = "bench"
ACCOUNT = "123456789012"
KEYS_PER_FILE = 500  # a folder of files merges into one stack, as a large repo would be laid out
ROLE_COUNT = 10  # distinct application roles named in policies and grants
# libyaml's emitter when present: writing 10,000 keys with the pure-Python one takes ~20 s.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def role_names() -> list[str]:
    return [f"bench-app-{i}" for i in range(ROLE_COUNT)]


def key_name(i: int) -> str:
    return f"k{i:05d}"


def key_block(i: int, *, revision: int, stack: str = STACK) -> dict[str, Any]:
    role = f"arn:aws:iam::${{account_id}}:role/bench-app-{i % ROLE_COUNT}"
    return {
        "description": f"bench key {i}",
        "aliases": [f"alias/{stack}/{key_name(i)}"],
        "rotation": {"enabled": True, "period_days": 365},
        "deletion": {"protected": True, "window_days": 30},
        "tags": {"team": f"team-{i % 7}", "revision": str(revision)},
        "policy": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdmin",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::${account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "AppUse",
                    "Effect": "Allow",
                    "Principal": {"AWS": role},
                    "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                },
            ],
        },
        "grants": [
            {
                "name": "app",
                "grantee": role,
                "operations": ["Decrypt", "GenerateDataKey"],
            }
        ],
    }


def manifest_documents(
    n: int,
    *,
    revision: int = 1,
    stack: str = STACK,
    account: str = ACCOUNT,
    region: str | None = None,
    role: str | None = None,
) -> list[dict[str, Any]]:
    """The manifest as documents of at most KEYS_PER_FILE keys each (one stack). `region` and
    `role` (a role ARN in `account`) are written only when given; aliases are
    alias/STACK/kNNNNN, so stacks in one account and Region never claim the same alias."""
    top: dict[str, Any] = {"version": 1, "stack": stack, "account": account}
    if region is not None:
        top["region"] = region
    if role is not None:
        top["role"] = role
    docs = []
    for start in range(0, max(n, 1), KEYS_PER_FILE):
        docs.append(
            {
                **top,
                "keys": {
                    key_name(i): key_block(i, revision=revision, stack=stack)
                    for i in range(start, min(n, start + KEYS_PER_FILE))
                },
            }
        )
    return docs


def write_manifest(folder: Path, n: int, *, revision: int = 1, **stack: Any) -> Path:
    """Write N keys into `folder` (replacing what was there) and return the folder. `stack`:
    the stack's name, account, region and role (`manifest_documents`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for index, doc in enumerate(manifest_documents(n, revision=revision, **stack)):
        text = yaml.dump(doc, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)
        (folder / f"keys-{index:03d}.yaml").write_text(text, encoding="utf-8")
    return folder
