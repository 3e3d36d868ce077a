"""Saved plans (``kmsplan plan --out FILE``) and the fingerprints that make them safe to apply
later.

A saved plan is the plan's public JSON document (`kmsplan.plan.serialize`), so what a reviewer
read is what apply runs. kmsplan keeps no state file, so a saved plan also records a
fingerprint of every live object it was computed from: `apply --plan` re-reads live KMS,
fingerprints it the same way, and refuses when `stale_objects` names anything that changed —
including a change made out of band, which a state serial would miss.

A saved plan also carries a ``checksum`` of its own content (sha256 over the canonical JSON of
the document without the checksum): a plan edited after `plan --out` wrote it is refused. The
checksum catches edits, not an adversary, who can compute it too: apply therefore trusts
nothing in the file it can establish itself, and judges the plan's calls again with its own
gate flags against live KMS read again (`kmsplan.run.saved`).

``plan --out`` of several stacks saves one file for the run (`write_run`): the run document
(``kind: run``, `kmsplan.plan.serialize.run_to_dict`), which holds each stack's plan
document, with one checksum over the whole file. One checksum, not one per stack: a stack
dropped from the file, two files spliced into one or a stack's plan moved to another run is an
edit like any other, and the file is exactly the run's ``--format json`` document plus its
checksum, as a single stack's saved plan is its plan document plus its checksum. A run in
which a stack failed to plan is never saved (the command refuses ``--out`` then): every stack
of a saved run has its plan. `read_saved` reads either kind of file: one plan per stack.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from kmsplan.errors import KmsplanError
from kmsplan.model import Grant, Key, LiveState
from kmsplan.plan.serialize import (
    PlanFormatError,
    is_run_document,
    plan_from_dict,
    plan_to_dict,
    plans_to_run_dict,
    run_from_dict,
)
from kmsplan.plan.types import FORMAT_VERSION, Plan

__all__ = [
    "PlanFormatError",
    "dumps",
    "dumps_run",
    "fingerprint",
    "loads",
    "loads_saved",
    "read",
    "read_saved",
    "stale_objects",
    "write",
    "write_run",
]


_T = TypeVar("_T")

CHECKSUM = "checksum"
CHECKSUM_PREFIX = "sha256:"


def dumps(plan: Plan) -> str:
    """The saved-plan document: the public JSON form of the plan and its checksum,
    pretty-printed."""
    return _with_checksum(plan_to_dict(plan))


def dumps_run(plans: Sequence[Plan]) -> str:
    """The saved run of several stacks: the run document of `plans` (one per stack, each
    planned) and one checksum over all of it, pretty-printed."""
    if not plans:
        raise ValueError("a saved run needs the plan of at least one stack")
    return _with_checksum(plans_to_run_dict(plans))


def _with_checksum(document: dict[str, Any]) -> str:
    document[CHECKSUM] = checksum(document)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def checksum(document: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of `document` without its checksum member."""
    return CHECKSUM_PREFIX + digest({k: v for k, v in document.items() if k != CHECKSUM})


def loads(text: str) -> Plan:
    """Read the saved plan of one stack (`loads_saved`); a saved run of several stacks is
    refused."""
    plans = loads_saved(text)
    if len(plans) > 1:
        raise PlanFormatError(
            f"plan document: a saved run of {len(plans)} stacks "
            f"({', '.join(p.stack for p in plans)}), not the plan of one stack"
        )
    return plans[0]


def loads_saved(text: str) -> tuple[Plan, ...]:
    """Read a saved plan (a 1-tuple) or a saved run (one plan per stack, in the file's order).
    Raises PlanFormatError (a KmsplanError) for text that is not JSON, an unknown
    ``format_version``, a document of the wrong shape, or one whose content does not match its
    checksum."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise PlanFormatError(f"plan document: not JSON: {exc}") from None
    # A document of a format this kmsplan reads is checked against its checksum before its
    # shape: an edited plan is reported as edited, whatever the edit broke.
    if isinstance(document, dict) and document.get("format_version") == FORMAT_VERSION:
        recorded = document.get(CHECKSUM)
        if recorded is None:
            raise PlanFormatError(
                "plan document: no checksum: save the plan with kmsplan plan --out. "
                "Nothing was changed"
            )
        if recorded != checksum(document):
            raise PlanFormatError(
                "plan document: the content does not match its checksum: the plan was changed "
                "after kmsplan plan --out saved it; plan again. Nothing was changed"
            )
    if is_run_document(document):
        return run_from_dict(document)
    return (plan_from_dict(document),)


def write(path: str | Path, plan: Plan) -> None:
    """Save the plan of one stack."""
    _write(path, dumps(plan))


def write_run(path: str | Path, plans: Sequence[Plan]) -> None:
    """Save the plans of a run of several stacks, one per stack, as one file."""
    _write(path, dumps_run(plans))


def _write(path: str | Path, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KmsplanError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None


def read(path: str | Path) -> Plan:
    """The saved plan of one stack at `path` (`loads`)."""
    return _read(path, loads)


def read_saved(path: str | Path) -> tuple[Plan, ...]:
    """The plans saved at `path`: a 1-tuple for the saved plan of one stack, one plan per
    stack for a saved run (`loads_saved`)."""
    return _read(path, loads_saved)


def _read(path: str | Path, parse: Callable[[str], _T]) -> _T:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KmsplanError(f"cannot read the plan {path}: {exc}") from None
    try:
        return parse(text)
    except PlanFormatError as exc:
        raise PlanFormatError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Fingerprints


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of a JSON-shaped value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(live: LiveState) -> dict[str, str]:
    """Address of every live object read -> digest of what was read.

    Per key (``key.<name>`` — or ``key.<name>@<key id>`` when several live keys carry the
    name): ``.metadata``, ``.policy``, ``.tags``, ``.rotation``, ``.grants``. Per alias in the
    Region: ``alias.<name>``. Per replica of a key: ``replica.<key>.<region>``, and each alias
    of a replica Region read: ``alias.<name>@<region>``. Plus ``account`` (account and
    Region), ``discovered`` (the sorted ids of the stack's keys: a key appearing or
    vanishing), ``usage.<key>`` and ``principal.<arn>`` (what the deletion gate and the
    principal checks relied on). Per ``adopt:`` block whose key does not carry its tags yet:
    ``adopt.<name>`` (what it named) and, for a key it would adopt, the same five digests
    under ``adopt.<name>``.
    """
    objects: dict[str, Any] = {
        "account": {"account_id": live.account_id, "region": live.region},
        "discovered": sorted(k.key_id or "" for k in live.keys),
    }
    names = [k.name for k in live.keys]
    for key in live.keys:
        base = f"key.{key.name}" if names.count(key.name) == 1 else f"key.{key.name}@{key.key_id}"
        objects.update(_key_objects(base, key))
        for replica in key.replicas:
            objects[f"replica.{key.name}.{replica.region}"] = {
                "state": replica.state.value if replica.state is not None else None,
                "description": replica.description,
                "policy": replica.policy if replica.policy is not None else replica.policy_text,
                "tags": sorted([k, v] for k, v in replica.live_tags),
                "aliases": list(replica.aliases),
            }
    # What each adopt: named, and the key it would adopt, read like the stack's own.
    for target in live.adoptions:
        if (target.owner_stack, target.owner_key) == (live.stack, target.name):
            continue  # adopted already: the key is fingerprinted as the stack's own
        objects[f"adopt.{target.name}"] = {
            "ref": target.ref,
            "key_id": target.key_id,
            "aws_managed": target.aws_managed,
            "owner_stack": target.owner_stack,
            "owner_key": target.owner_key,
        }
        if target.key is not None:
            objects.update(_key_objects(f"adopt.{target.name}", target.key))
    for alias in live.aliases:
        objects[f"alias.{alias.name}"] = {"target_key_id": alias.target_key_id}
    for region, targets in live.regional_aliases.items():
        for alias in targets:
            objects[f"alias.{alias.name}@{region}"] = {"target_key_id": alias.target_key_id}
    for name, usage in live.last_usage.items():
        objects[f"usage.{name}"] = {
            "known": usage.known,
            "last_used": usage.last_used,
            "tracking_start": usage.tracking_start,
        }
    for arn, exists in live.principals.items():
        objects[f"principal.{arn}"] = {"exists": exists}
    return {address: digest(value) for address, value in sorted(objects.items())}


def _key_objects(base: str, key: Key) -> dict[str, Any]:
    """The digests of one live key: metadata, policy, tags, rotation, grants."""
    return {
        f"{base}.metadata": _metadata(key),
        f"{base}.policy": (
            {"policy": key.policy} if key.policy is not None else {"policy_text": key.policy_text}
        ),
        f"{base}.tags": sorted([k, v] for k, v in key.live_tags),
        f"{base}.rotation": {
            "enabled": key.rotation.enabled,
            "period_days": key.rotation.period_days,
        },
        f"{base}.grants": sorted(
            (_grant(g) for g in (*key.grants, *key.foreign_grants)),
            key=lambda g: (str(g["grant_id"]), str(g["name"])),
        ),
    }


def stale_objects(saved: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """Addresses whose live object changed since the plan was saved, appeared, or vanished."""
    return sorted(a for a in set(saved) | set(current) if saved.get(a) != current.get(a))


def _metadata(key: Key) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "arn": key.arn,
        "state": key.state.value if key.state is not None else None,
        "enabled": key.enabled,
        "description": key.description,
        "spec": key.spec,
        "usage": key.usage,
        "origin": key.origin,
        "multi_region": key.multi_region,
        "deletion_date": key.deletion_date,
    }


def _grant(g: Grant) -> dict[str, Any]:
    constraints = None
    if g.constraints is not None:
        constraints = {
            "subset": g.constraints.encryption_context_subset,
            "equals": g.constraints.encryption_context_equals,
        }
    return {
        "grant_id": g.grant_id,
        "name": g.name,
        "grantee": g.grantee,
        "operations": list(g.operations),
        "retiring_principal": g.retiring_principal,
        "constraints": constraints,
    }
