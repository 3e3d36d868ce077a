"""Adoption: which ``adopt:`` blocks bring an existing key under management, and which are
refused, why, and the way out. Pure: it judges the facts the reader found (`AdoptTarget`).

A block adopts its target when no live key carries the block's tags yet and the target is a
customer managed key in the run's account and Region that no stack (and no other block)
owns. Once the key carries the block's tags, ``adopt:`` is a no-op as long as it still names
that key. The differ plans an adoption as the key's change with action ``adopt``; the gate
attaches the refusals (rule ``adopt``) to it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kmsplan.model import AdoptTarget, Key, LiveState, Stack
from kmsplan.plan.actions import Action
from kmsplan.plan.reasons import Why
from kmsplan.plan.types import Change


class Refusal(str, enum.Enum):
    ELSEWHERE = "elsewhere"  # the ARN names another account or Region
    NOT_FOUND = "not-found"
    AWS_MANAGED = "aws-managed"
    OTHER_STACK = "other-stack"
    OTHER_BLOCK = "other-block"  # a key of this stack under another name
    ADOPTED_TWICE = "adopted-twice"
    TAGS_ON_ANOTHER_KEY = "tags-on-another-key"  # this block's tags are on another key


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One ``adopt:`` block: the key to adopt, or why not (reason and way out)."""

    name: str
    ref: str
    key: Key | None = None  # the key to adopt, named as the block
    refusal: Refusal | None = None
    reason: str = ""
    unblock: str = ""

    @property
    def adopts(self) -> bool:
        return self.key is not None


def decide(desired: Stack, live: LiveState) -> dict[str, Decision]:
    """The decision for every declared block that says ``adopt:`` and whose key does not carry
    its tags yet, or names another key than the one that does. Blocks absent from the answer
    need nothing (no ``adopt:``, or already adopted)."""
    targets = {t.name: t for t in live.adoptions}
    managed = {k.name: k for k in live.keys}
    wanted: dict[str, AdoptTarget] = {}
    decisions: dict[str, Decision] = {}
    for block in desired.keys:
        if block.adopt is None:
            continue
        target = targets.get(block.name) or AdoptTarget(name=block.name, ref=block.adopt)
        current = managed.get(block.name)
        if current is not None:
            if target.key_id != current.key_id:
                decisions[block.name] = _tags_on_another_key(target, current)
            continue  # adopted already: adopt: names the key carrying the tags
        refused = _refusal(target, desired, live)
        if refused is not None:
            decisions[block.name] = refused
        else:
            wanted[block.name] = target
    by_key: dict[str, list[str]] = {}
    for name, target in wanted.items():
        by_key.setdefault(target.key_id or "", []).append(name)
    for name, target in wanted.items():
        others = [n for n in by_key[target.key_id or ""] if n != name]
        if others:
            decisions[name] = _refuse(
                target,
                Refusal.ADOPTED_TWICE,
                f"key {target.key_id} is also adopted by " + ", ".join(f"key.{n}" for n in others),
                "keep adopt: on one block only: one key is managed as one logical key",
            )
        elif target.key is not None:
            key = dataclasses.replace(target.key, name=name)
            decisions[name] = Decision(name=name, ref=target.ref, key=key)
    return decisions


def adopted_keys(decisions: Mapping[str, Decision]) -> tuple[Key, ...]:
    """The keys the plan adopts, to be diffed like the stack's own live keys."""
    return tuple(d.key for _, d in sorted(decisions.items()) if d.key is not None)


def with_adopted(live: LiveState, decisions: Mapping[str, Decision]) -> LiveState:
    """`live` with the keys to adopt among the stack's keys (sorted by name)."""
    adopted = adopted_keys(decisions)
    if not adopted:
        return live
    keys = tuple(sorted((*live.keys, *adopted), key=lambda k: k.name))
    return dataclasses.replace(live, keys=keys)


def adopted_refs(changes: Iterable[Change]) -> dict[str, str]:
    """Block name -> what its ``adopt:`` says, for the adoptions among `changes` (a saved
    plan re-read to check it is not stale must resolve the same references)."""
    refs: dict[str, str] = {}
    for change in changes:
        if change.action is not Action.ADOPT or change.address.step is not None:
            continue
        for part in change.reason.parts:
            if part.why in (Why.ADOPTED, Why.ADOPT_DECLARED):
                refs[change.key] = dict(part.params)["ref"]
    return refs


def _refuse(target: AdoptTarget, refusal: Refusal, why: str, unblock: str) -> Decision:
    return Decision(
        name=target.name,
        ref=target.ref,
        refusal=refusal,
        reason=f"key.{target.name}: adopt: {target.ref}: {why}",
        unblock=unblock,
    )


def _refusal(target: AdoptTarget, desired: Stack, live: LiveState) -> Decision | None:
    where = _arn_placement(target.ref)
    if where is not None and where != (live.account_id, live.region):
        account, region = where
        return _refuse(
            target,
            Refusal.ELSEWHERE,
            f"the ARN names account {account}, Region {region}; stack {desired.name} is "
            f"planned in account {live.account_id}, Region {live.region}",
            "adopt the key from a stack planned in its own account and Region, or name a "
            "key of this one",
        )
    if target.key_id is None:
        return _refuse(
            target,
            Refusal.NOT_FOUND,
            f"no such key in account {live.account_id}, Region {live.region}",
            f"check the reference (aws kms describe-key --key-id {target.ref}), or remove "
            "adopt: to have kmsplan create a new key",
        )
    if target.aws_managed:
        return _refuse(
            target,
            Refusal.AWS_MANAGED,
            f"key {target.key_id} is an AWS managed key (KeyManager=AWS), which only AWS manages",
            "remove the block; to control the key policy, use a customer managed key "
            "instead (declare one, and point the service at it)",
        )
    if target.owner_stack is not None and target.owner_stack != desired.name:
        owner = f"key.{target.owner_key}" if target.owner_key else "a key"
        return _refuse(
            target,
            Refusal.OTHER_STACK,
            f"key {target.key_id} is {owner} of stack {target.owner_stack} (its kmsplan:stack tag)",
            f"release it from stack {target.owner_stack} first (list "
            f"{target.owner_key or 'its name'} under released: there and apply), then "
            "adopt it here",
        )
    if target.owner_stack == desired.name and target.owner_key not in (None, target.name):
        return _refuse(
            target,
            Refusal.OTHER_BLOCK,
            f"key {target.key_id} is already key.{target.owner_key} of this stack",
            f"remove adopt: from key.{target.name}: one key is managed as one logical key",
        )
    return None


def _tags_on_another_key(target: AdoptTarget, current: Key) -> Decision:
    names = f"key {target.key_id}" if target.key_id else "no key"
    return _refuse(
        target,
        Refusal.TAGS_ON_ANOTHER_KEY,
        f"names {names}, but key {current.key_id} already carries this block's tags "
        f"(kmsplan:key={target.name})",
        f"remove adopt: (key {current.key_id} is this block's key); to manage another key "
        f"under this name, release key.{target.name} first (released: and apply), then adopt",
    )


def _arn_placement(ref: str) -> tuple[str, str] | None:
    """(account, Region) of a key ARN; None for a key id or an alias name."""
    parts = ref.split(":")
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "kms":
        return parts[4], parts[3]
    return None
