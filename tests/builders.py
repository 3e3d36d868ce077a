"""Builders for desired and live state, so differ and gate tests need no AWS at all.

`desired_key` builds a key as a manifest would declare it; `live_key` builds the key as the
reader would see it in KMS (live fields filled, reserved tags among `live_tags`);
`converged` turns a desired stack into the live state an apply would leave behind.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from kmsplan.model import (
    TAG_KEY,
    TAG_PROTECTION,
    TAG_STACK,
    TAG_WINDOW,
    AliasTarget,
    Grant,
    Key,
    KeyState,
    LastUsage,
    LiveState,
    Stack,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "payments"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
CALLER_ARN = f"arn:aws:iam::{ACCOUNT}:user/deployer"
# The reference "now" of gate tests.
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def admin_policy(*, sid: str = "AccountAdmin", account: str = ACCOUNT) -> dict[str, Any]:
    """A policy that lets the account root manage the key (passes the lockout check)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def user_policy(principal: str, *, admin_sid: str = "AccountAdmin") -> dict[str, Any]:
    """The admin policy plus a statement letting `principal` use the key."""
    policy = admin_policy(sid=admin_sid)
    policy["Statement"].append(
        {
            "Sid": "Use",
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
        }
    )
    return policy


def lockout_policy() -> dict[str, Any]:
    """A policy that lets nobody manage the key: KMS's lockout check would refuse it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UseOnly",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            }
        ],
    }


def grant(name: str, *, grantee: str = f"arn:aws:iam::{ACCOUNT}:role/app", **kw: Any) -> Grant:
    kw.setdefault("operations", ("Decrypt", "GenerateDataKey"))
    kw["operations"] = tuple(sorted(kw["operations"]))
    return Grant(name=name, grantee=grantee, **kw)


def desired_key(name: str, **kw: Any) -> Key:
    """A key as declared in a manifest. Tags may be given as a dict."""
    if isinstance(kw.get("tags"), Mapping):
        kw["tags"] = tuple(sorted(kw["tags"].items()))
    if "aliases" in kw:
        kw["aliases"] = tuple(sorted(kw["aliases"]))
    if "grants" in kw:
        kw["grants"] = tuple(sorted(kw["grants"], key=lambda g: g.name))
    return Key(name=name, **kw)


def stack(*keys: Key, name: str = STACK, **kw: Any) -> Stack:
    return Stack(name=name, keys=tuple(sorted(keys, key=lambda k: k.name)), **kw)


def key_id_for(name: str, stack_name: str = STACK) -> str:
    """A stable, realistic key id for a logical name (so tests can predict it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{stack_name}.{name}"))


def live_key(
    key: Key | str,
    *,
    key_id: str | None = None,
    stack_name: str = STACK,
    protected: bool | None = None,
    state: KeyState | None = None,
    extra_tags: Mapping[str, str] | None = None,
    omit_tags: Iterable[str] = (),
    foreign_grants: Iterable[Grant] = (),
    **changes: Any,
) -> Key:
    """The key as the reader would return it. `key` is a desired key to copy (converged) or a
    bare logical name; `changes` override attributes (drift)."""
    base = key if isinstance(key, Key) else Key(name=key)
    base = dataclasses.replace(base, **changes) if changes else base
    if protected is not None:
        base = dataclasses.replace(
            base, deletion=dataclasses.replace(base.deletion, protected=protected)
        )
    key_id = key_id or key_id_for(base.name, stack_name)
    if state is None:
        state = KeyState.ENABLED if base.enabled else KeyState.DISABLED
    if state.is_pending_deletion:
        base = dataclasses.replace(base, enabled=False)
    tags = {
        TAG_STACK: stack_name,
        TAG_KEY: base.name,
        TAG_PROTECTION: "true" if base.deletion.protected else "false",
        TAG_WINDOW: str(base.deletion.window_days),
        **dict(base.tags),
        **dict(extra_tags or {}),
    }
    for tag in omit_tags:
        tags.pop(tag, None)
    policy = base.policy if base.policy is not None else admin_policy(sid="Enable IAM policies")
    return dataclasses.replace(
        base,
        policy=policy,
        bypass_policy_lockout_safety_check=False,
        lint_disable=(),
        key_id=key_id,
        arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}",
        state=state,
        deletion_date="2025-07-01T00:00:00+00:00" if state.is_pending_deletion else None,
        policy_text=json.dumps(policy, indent=2),
        tags=tuple(sorted((k, v) for k, v in tags.items() if not k.startswith("kmsplan:"))),
        grants=tuple(
            dataclasses.replace(g, grant_id=g.grant_id or f"grant-{base.name}-{g.name}")
            for g in base.grants
        ),
        foreign_grants=tuple(foreign_grants),
        live_tags=tuple(sorted(tags.items())),
    )


def live_state(
    *keys: Key,
    aliases: Mapping[str, str | None] | None = None,
    last_usage: Mapping[str, LastUsage] | None = None,
    principals: Mapping[str, bool | None] | None = None,
    stack_name: str = STACK,
    caller_arn: str = CALLER_ARN,
) -> LiveState:
    """A live state holding `keys`; aliases default to each key's declared aliases."""
    if aliases is None:
        aliases = {a: k.key_id for k in keys for a in k.aliases}
    return LiveState(
        stack=stack_name,
        account_id=ACCOUNT,
        region=REGION,
        caller_arn=caller_arn,
        keys=tuple(sorted(keys, key=lambda k: k.name)),
        aliases=tuple(AliasTarget(name=n, target_key_id=t) for n, t in sorted(aliases.items())),
        last_usage=dict(last_usage or {}),
        principals=dict(principals or {}),
    )


def converged(desired: Stack, **kw: Any) -> LiveState:
    """The live state an apply of `desired` leaves behind: a plan against it is empty."""
    return live_state(*(live_key(k) for k in desired.keys), **kw)


def unused(days: int = 400) -> LastUsage:
    """A usage answer: last cryptographic use `days` before NOW."""
    return LastUsage(
        known=True,
        last_used=(NOW - timedelta(days=days)).isoformat(),
        tracking_start="2023-01-01T00:00:00+00:00",
    )


def never_used() -> LastUsage:
    return LastUsage(known=True, last_used=None, tracking_start="2023-01-01T00:00:00+00:00")
