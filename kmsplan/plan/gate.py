"""The safety gate at plan time (see "The safety gate" in the README). Pure: it reads the
planned calls and the live state and attaches GateBlock values saying why a change may not
run and what would unblock it.

The gate judges the calls exactly as they will be sent (the ScheduleKeyDeletion window, the
Policy text, the BypassPolicyLockoutSafetyCheck flag), so what it approved is what apply does.
`apply --plan` judges a saved plan's calls again with `recheck` (live state read again, apply's
own flags), and the applier checks the deletion rules once more right before it writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from kmsplan import kmsspec
from kmsplan.errors import PolicyError
from kmsplan.model import (
    TAG_PROTECTION,
    TAG_STACK,
    Key,
    LastUsage,
    LiveState,
    Replica,
    Stack,
    deletion_protected,
    replica_usage_name,
)
from kmsplan.plan import adoption as adoption_lib
from kmsplan.plan.types import (
    Action,
    ApiCall,
    Change,
    GateBlock,
    GateOptions,
    Resource,
    is_ref,
)
from kmsplan.policy.document import Policy, parse_policy
from kmsplan.policy.lockout import lockout_reason
from kmsplan.policy.principals import (
    UNIQUE_ID_PREFIXES,
    same_account_iam_principals,
    unique_id_principals,
)

# Attributes KMS fixes at CreateKey; a difference can only be resolved by a new key.
IMMUTABLE_ATTRIBUTES = ("spec", "usage", "origin", "multi_region")

# ScheduleKeyDeletion's PendingWindowInDays range (API_ScheduleKeyDeletion).
MIN_WINDOW_DAYS = kmsspec.DELETION_WINDOW_MIN_DAYS
MAX_WINDOW_DAYS = kmsspec.DELETION_WINDOW_MAX_DAYS

_MAYBE_UNIQUE_ID = re.compile("|".join(UNIQUE_ID_PREFIXES))

_UNBLOCK_IMMUTABLE_ADOPTED = (
    "write the key's actual spec, usage and multi_region in its block (kmsplan import writes "
    "them), or adopt another key"
)
_UNBLOCK_IMMUTABLE = (
    "declare a new key with the attributes you want, move the aliases to it, re-encrypt the "
    "data under the new key, then remove the old key's block and retire it through the "
    "deletion gate"
)


def check(
    changes: Sequence[Change],
    *,
    desired: Stack,
    live: LiveState,
    gate: GateOptions,
    now: datetime,
) -> tuple[tuple[Change, ...], tuple[str, ...]]:
    """Attach the gate's blocks to `changes` (order kept); return them with the plan-level
    warnings (principals in live policies that have become unique ids)."""
    context = _Context(desired=desired, live=live, gate=gate, now=now)
    mass = _mass_deletion(changes, context)
    gated = []
    for change in changes:
        blocks = [block for rule in _RULES for block in rule(change, context)]
        if mass is not None and _schedules_deletion(change):
            blocks.append(mass)
        gated.append(replace(change, blocked=(*change.blocked, *blocks)) if blocks else change)
    return tuple(gated), tuple(_unique_id_warnings(live))


class _Context:
    __slots__ = (
        "_policies",
        "adoptions",
        "by_id",
        "desired",
        "gate",
        "live",
        "missing_principals",
        "now",
        "root_arn",
    )

    def __init__(
        self, *, desired: Stack, live: LiveState, gate: GateOptions, now: datetime
    ) -> None:
        self.desired = desired
        self.live = live
        self.gate = gate
        self.now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
        self.by_id = {k.key_id: k for k in live.keys if k.key_id}
        # Refused adoptions by block name (the keys being adopted are among live.keys).
        self.adoptions = {
            name: d for name, d in adoption_lib.decide(desired, live).items() if not d.adopts
        }
        partition = _partition(live.caller_arn)
        self.root_arn = f"arn:{partition}:iam::{live.account_id}:root"
        self.missing_principals = {p for p, exists in live.principals.items() if exists is False}
        # Policy text -> parsed document or parse error: keys often share one policy.
        self._policies: dict[str, tuple[Policy | None, str | None]] = {}

    def policy_of(self, call: ApiCall) -> tuple[Policy | None, str | None]:
        """(the policy `call` sends, None) or (None, why it cannot be parsed); (None, None)
        for a call that sends no policy."""
        text = call.params.get("Policy")
        if call.operation not in _POLICY_OPERATIONS or not isinstance(text, str):
            return None, None
        if text not in self._policies:
            try:
                self._policies[text] = (parse_policy(text), None)
            except PolicyError as exc:
                self._policies[text] = (None, str(exc))
        return self._policies[text]


_POLICY_OPERATIONS = ("CreateKey", "PutKeyPolicy", "ReplicateKey")


def _partition(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if len(parts) > 2 and parts[0] == "arn" and parts[1] else "aws"


# ---------------------------------------------------------------------------------------------
# Rules: each takes one change and returns the blocks it earns.


def _immutable(change: Change, ctx: _Context) -> list[GateBlock]:
    differing = [a for a in change.attributes if a.name in IMMUTABLE_ATTRIBUTES]
    if change.resource is not Resource.KEY or not differing:
        return []
    what = ", ".join(f"{a.name} {a.before!r} -> {a.after!r}" for a in differing)
    adopting = change.action is Action.ADOPT
    return [
        GateBlock(
            rule="immutable",
            reason=(
                f"{change.address}: {what}: KMS cannot change this on an existing key, and "
                "kmsplan never replaces a key behind your back (that would destroy the data "
                "encrypted under it)"
            ),
            unblock=_UNBLOCK_IMMUTABLE_ADOPTED if adopting else _UNBLOCK_IMMUTABLE,
        )
    ]


def _adoption(change: Change, ctx: _Context) -> list[GateBlock]:
    """An ``adopt:`` that cannot go ahead: the target is missing, AWS managed, another
    stack's or block's key, adopted twice, or not the key carrying the block's tags."""
    if change.action is not Action.ADOPT or change.address.step is not None:
        return []
    decision = ctx.adoptions.get(change.key)
    if decision is None:
        return []
    return [GateBlock(rule="adopt", reason=decision.reason, unblock=decision.unblock)]


def _alias_takeover(change: Change, ctx: _Context) -> list[GateBlock]:
    if change.resource is not Resource.ALIAS or ctx.gate.allow_alias_takeover:
        return []
    if not any(call.operation == "UpdateAlias" for call in change.calls):
        return []
    current = (change.before or {}).get("target_key_id")
    if current in ctx.by_id:
        return []
    return [
        GateBlock(
            rule="alias-takeover",
            reason=(
                f"{change.address} points at key {current}, which is not a key of stack "
                f"{ctx.desired.name}; moving it would take it from whoever uses that key"
            ),
            unblock="re-run with --allow-alias-takeover if the alias should move to this stack",
        )
    ]


def _deletion(change: Change, ctx: _Context) -> list[GateBlock]:
    blocks: list[GateBlock] = []
    for call in change.calls:
        if call.operation != "ScheduleKeyDeletion":
            continue
        key = ctx.by_id.get(str(call.params.get("KeyId")))
        replica = _live_replica(change, ctx)
        if replica is not None:
            blocks.extend(_protection_of(change, dict(replica.live_tags)))
        else:
            blocks.extend(_protection(change, key))
        if not ctx.gate.allow_delete:
            blocks.append(
                GateBlock(
                    rule="allow-delete",
                    reason=f"{change.address}: scheduling a key deletion needs --allow-delete",
                    unblock="re-run with --allow-delete",
                )
            )
        window = call.params.get("PendingWindowInDays")
        if not isinstance(window, int) or not MIN_WINDOW_DAYS <= window <= MAX_WINDOW_DAYS:
            blocks.append(
                GateBlock(
                    rule="window",
                    reason=(
                        f"{change.address}: pending window {window} days is outside "
                        f"{MIN_WINDOW_DAYS}-{MAX_WINDOW_DAYS}"
                    ),
                    unblock=(
                        f"set defaults.deletion.window_days between {MIN_WINDOW_DAYS} and "
                        f"{MAX_WINDOW_DAYS}"
                    ),
                )
            )
        name = key.name if key is not None else change.key
        region = _replica_region(change, ctx.live)
        if region is not None:
            name = replica_usage_name(change.key, region)
        blocks.extend(_usage(change, ctx.live.last_usage.get(name), ctx))
        if region is None and key is not None:
            blocks.extend(_replicas_first(change, key))
    return blocks


def _replica_region(change: Change, live: LiveState) -> str | None:
    """The Region of the replica `change` acts on; None for a change of a key. Judged from
    where the calls go, not only from the labels (a saved plan's labels are claims): a
    replica change is placed in its own Region, which is not the plan's."""
    region = change.address.region
    placed = change.placement.region if change.placement is not None else None
    if change.resource is not Resource.REPLICA or region is None or placed != region:
        return None
    return region if region != live.region else None


def _live_replica(change: Change, ctx: _Context) -> Replica | None:
    region = _replica_region(change, ctx.live)
    key = ctx.live.key(change.key) if region is not None else None
    return key.replica(region) if key is not None and region is not None else None


def _replicas_first(change: Change, key: Key) -> list[GateBlock]:
    """KMS deletes a primary only after its replicas; kmsplan does not schedule a primary's
    deletion while any replica of it is still in service."""
    standing = sorted(
        r.region for r in key.replicas if r.state is None or not r.state.is_pending_deletion
    )
    if not standing:
        return []
    return [
        GateBlock(
            rule="replicas",
            reason=(
                f"{change.address} is a multi-Region primary key with replicas in "
                f"{', '.join(standing)}; KMS deletes a primary only after its replicas"
            ),
            unblock=(
                "delete the replicas first (remove them from replicas:, apply through the "
                "gate), then remove the key's block"
            ),
        )
    ]


def _protection(change: Change, key: Key | None) -> list[GateBlock]:
    return _protection_of(change, dict(key.live_tags) if key is not None else {})


def _protection_of(change: Change, tags: dict[str, str]) -> list[GateBlock]:
    if not deletion_protected(tags):
        return []
    value = tags.get(TAG_PROTECTION)
    seen = f"is {value!r}" if value is not None else "is missing"
    return [
        GateBlock(
            rule="deletion-protection",
            reason=(
                f"{change.address} is deletion-protected: its live tag {TAG_PROTECTION} {seen}. "
                "Removing the key's block does not remove its protection"
            ),
            unblock=(
                "declare the key again with `deletion: {protected: false}`, apply that "
                "change, then remove the key's block"
            ),
        )
    ]


def _usage(change: Change, usage: LastUsage | None, ctx: _Context) -> list[GateBlock]:
    days = ctx.gate.unused_for_days
    unknown_unblock = (
        "re-run with --ignore-usage once you have confirmed by other means (CloudTrail) that "
        "nothing uses the key"
    )
    if usage is None or not usage.known:
        if ctx.gate.ignore_usage:
            return []
        detail = f": {_one_line(usage.detail)}" if usage is not None and usage.detail else ""
        return [
            GateBlock(
                rule="usage",
                reason=f"{change.address}: the key's last cryptographic use is unknown{detail}",
                unblock=unknown_unblock,
            )
        ]
    horizon = ctx.now - timedelta(days=days)
    if usage.last_used is not None:
        last = _parse_time(usage.last_used)
        if last is None or last > horizon:
            ago = f" ({(ctx.now - last).days} days ago)" if last is not None else ""
            return [
                GateBlock(
                    rule="usage",
                    reason=(
                        f"{change.address}: the key was last used {usage.last_used}{ago}, "
                        f"within --unused-for {days} days"
                    ),
                    unblock=(
                        "find and stop what still uses the key, then plan again after "
                        f"{days} days without use (or lower --unused-for)"
                    ),
                )
            ]
        return []
    # Never used — but only as far back as KMS has been tracking.
    start = _parse_time(usage.tracking_start) if usage.tracking_start else None
    if start is not None and start > horizon and not ctx.gate.ignore_usage:
        return [
            GateBlock(
                rule="usage",
                reason=(
                    f"{change.address}: KMS has tracked the key's use only since "
                    f"{usage.tracking_start}, less than --unused-for {days} days"
                ),
                unblock=unknown_unblock,
            )
        ]
    return []


def _one_line(text: str, limit: int = 200) -> str:
    """An error detail fit for one line of a plan (some endpoints answer with an HTML page)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _lockout(change: Change, ctx: _Context) -> list[GateBlock]:
    blocks = []
    for call in change.calls:
        if call.params.get("BypassPolicyLockoutSafetyCheck") is True:
            continue
        policy, error = ctx.policy_of(call)
        if policy is None and error is None:
            continue
        # The account root is always considered; the caller too, when STS told us who it is.
        principals = [ctx.root_arn] + ([ctx.live.caller_arn] if ctx.live.caller_arn else [])
        if policy is not None:
            why = lockout_reason(policy, principals, account_id=ctx.live.account_id)
        else:
            why = f"the policy cannot be checked: {error}"
        if why is None:
            continue
        blocks.append(
            GateBlock(
                rule="lockout",
                reason=f"{change.address}: {call.operation}: {why}",
                unblock=(
                    f"add a statement allowing kms:PutKeyPolicy to {ctx.root_arn} or the "
                    "deploying principal; to lock the key on purpose, set "
                    "`bypass_policy_lockout_safety_check: true` on the key and re-run with "
                    "--bypass-policy-lockout-safety-check"
                ),
            )
        )
    return blocks


def _principals(change: Change, ctx: _Context) -> list[GateBlock]:
    if not ctx.missing_principals:
        return []
    named: set[str] = set()
    for call in change.calls:
        policy, _ = ctx.policy_of(call)  # an unparseable document is the lockout rule's
        if policy is not None:
            named |= same_account_iam_principals(policy, ctx.live.account_id)
        if call.operation == "CreateGrant":
            for param in ("GranteePrincipal", "RetiringPrincipal"):
                value = call.params.get(param)
                if isinstance(value, str):
                    named.add(value)
    return [
        GateBlock(
            rule="principal-missing",
            reason=(
                f"{change.address}: {principal} does not exist; KMS would reject the "
                f"{'grant' if change.resource is Resource.GRANT else 'key policy'}"
            ),
            unblock=f"create {principal} first, or remove it from the manifest",
        )
        for principal in sorted(named & ctx.missing_principals)
    ]


_RULES: tuple[Callable[[Change, _Context], list[GateBlock]], ...] = (
    _adoption,
    _immutable,
    _alias_takeover,
    _deletion,
    _lockout,
    _principals,
)


# ---------------------------------------------------------------------------------------------
# Plan-wide rules and warnings


def _schedules_deletion(change: Change) -> bool:
    return change.action is Action.DELETE and any(
        call.operation == "ScheduleKeyDeletion" for call in change.calls
    )


def _mass_deletion(changes: Sequence[Change], ctx: _Context) -> GateBlock | None:
    if ctx.gate.allow_delete_all:
        return None
    # Releases delete nothing: a released key neither counts as deleted nor as kept — one
    # listed in released:, or any key whose stack tag a call removes (a duplicate released).
    released = set(ctx.desired.released)
    untagged = {
        call.params.get("KeyId")
        for change in changes
        for call in change.calls
        if call.operation == "UntagResource" and TAG_STACK in call.params.get("TagKeys", ())
    }
    active = {
        k.key_id
        for k in ctx.live.keys
        if not (k.state is not None and k.state.is_pending_deletion)
        and k.name not in released
        and k.key_id not in untagged
    }
    doomed = {
        call.params.get("KeyId")
        for change in changes
        # A replica shares its primary's key id; deleting it leaves the key.
        if _schedules_deletion(change) and _replica_region(change, ctx.live) is None
        for call in change.calls
        if call.operation == "ScheduleKeyDeletion"
    }
    if not active or not active <= doomed:
        return None
    return GateBlock(
        rule="mass-deletion",
        reason=(
            f"this plan would delete every key of stack {ctx.desired.name} ({len(active)}): "
            "an empty or mistyped manifest, or a wrong `stack:`, looks exactly like this"
        ),
        unblock=(
            "check the manifests and the stack name; re-run with --allow-delete-all if intended"
        ),
    )


def _unique_id_warnings(live: LiveState) -> list[str]:
    warnings = []
    for key in live.keys:
        # Parsing every live policy is the expensive part of a large plan; only documents
        # that mention a unique-id prefix at all can hold one.
        if key.policy is None or not _MAYBE_UNIQUE_ID.search(json.dumps(key.policy)):
            continue
        try:
            ids = unique_id_principals(key.policy)
        except PolicyError:
            continue
        for uid in ids:
            warnings.append(
                f"key.{key.name}: the live policy names {uid}, an IAM unique id: the role or "
                "user it named was deleted, so the statement matches no one (re-creating the "
                "role does not restore it; put the policy again)"
            )
    return warnings


# ---------------------------------------------------------------------------------------------
# Apply time: the changes of a saved plan, judged again


def recheck(
    changes: Sequence[Change],
    *,
    stack: str,
    live: LiveState,
    gate: GateOptions,
    now: datetime,
) -> tuple[Change, ...]:
    """The gate again, at apply time, for the changes of a saved plan (order kept).

    A saved plan is a file that may have passed through other hands, so nothing it says about
    the gate counts: its verdicts are dropped, and the rules judge the calls exactly as they
    will be sent against `live` (read again by apply) with `gate` (apply's own flags). Where a
    plan-time rule takes a fact from the change rather than from KMS, the fact comes from
    `live` or the calls here: an alias's current target, whether a change schedules a deletion
    or moves an alias. And a rule only a file needs: every call must address a key of stack
    `stack` as read now, or a key the plan itself creates.
    """
    targets = {a.name: a.target_key_id for a in live.aliases}
    judged = [_judged(c, targets) for c in changes]
    # The plan's adoptions are judged again against the keys they name now (a key adopted
    # here is the stack's for the rules); a key whose kmsplan:stack tag a call removes is
    # leaving the stack, so the mass-deletion rule counts it as a plan does a release.
    desired = Stack(
        name=stack,
        keys=tuple(
            Key(name=name, adopt=ref)
            for name, ref in sorted(adoption_lib.adopted_refs(changes).items())
        ),
        released=_leaving(changes, live),
    )
    live = adoption_lib.with_adopted(live, adoption_lib.decide(desired, live))
    context = _Context(desired=desired, live=live, gate=gate, now=now)
    gated, _ = check(judged, desired=context.desired, live=live, gate=gate, now=now)
    creates = {
        str(c.address) for c in changes if any(call.operation == "CreateKey" for call in c.calls)
    }
    result = []
    for change, judgement in zip(changes, gated, strict=True):
        blocks = (*judgement.blocked, *_outside_stack(change, context, creates, targets))
        result.append(replace(change, blocked=blocks))
    return tuple(result)


def _leaving(changes: Sequence[Change], live: LiveState) -> tuple[str, ...]:
    """Names of the live keys whose kmsplan:stack tag the calls remove."""
    ids = {
        _bare_key_id(str(call.params.get("KeyId")))
        for change in changes
        for call in change.calls
        if call.operation == "UntagResource" and TAG_STACK in call.params.get("TagKeys", ())
    }
    return tuple(sorted(k.name for k in live.keys if k.key_id in ids))


def _judged(change: Change, targets: dict[str, str | None]) -> Change:
    """`change` as the rules see it at apply time: no verdicts; its action and resource taken
    from its calls where they matter to a rule (the file's labels are claims too); an alias's
    target from live KMS."""
    operations = {call.operation for call in change.calls}
    judged = replace(
        change,
        blocked=(),
        action=Action.DELETE if "ScheduleKeyDeletion" in operations else change.action,
        resource=(
            Resource.ALIAS if operations & {"UpdateAlias", "DeleteAlias"} else change.resource
        ),
    )
    return replace(judged, before=_live_before(judged, targets))


def _live_before(change: Change, targets: dict[str, str | None]) -> Mapping[str, Any] | None:
    """An alias change's `before` with the alias's target as KMS has it now."""
    names = {
        call.params.get("AliasName")
        for call in change.calls
        if call.operation in ("UpdateAlias", "DeleteAlias")
    }
    name = next(iter(names), None) if len(names) == 1 else None
    if change.resource is not Resource.ALIAS or not isinstance(name, str):
        return change.before
    return {**(change.before or {}), "target_key_id": targets.get(name)}


def _outside_stack(
    change: Change, ctx: _Context, creates: set[str], targets: dict[str, str | None]
) -> list[GateBlock]:
    blocks = []
    for call in change.calls:
        where = f"{change.address}: {call.operation}"
        for param in ("KeyId", "TargetKeyId"):
            if param not in call.params:
                continue
            value = call.params[param]
            if is_ref(value):
                if value["$ref"] in creates:
                    continue
                what = f"{value['$ref']}, which creates no key"
            elif isinstance(value, str) and _bare_key_id(value) in ctx.by_id:
                continue
            else:
                what = f"key {value!r}, which is not a key of stack {ctx.desired.name}"
            blocks.append(
                GateBlock(
                    rule="outside-stack",
                    reason=f"{where}: {param} is {what}",
                    unblock="plan again (kmsplan plan --out) and apply that plan",
                )
            )
        alias = call.params.get("AliasName")
        if call.operation != "DeleteAlias" or not isinstance(alias, str):
            continue
        current = targets.get(alias)
        if current is None or current in ctx.by_id:
            continue
        moved = any(
            c.operation == "CreateAlias" and c.params.get("AliasName") == alias
            for c in change.calls
        )
        if not moved:
            # The differ deletes an alias held outside the stack only to move it here.
            blocks.append(
                GateBlock(
                    rule="outside-stack",
                    reason=(
                        f"{where}: {alias} points at key {current}, which is not a key of "
                        f"stack {ctx.desired.name}, and the change does not move it here"
                    ),
                    unblock="plan again (kmsplan plan --out) and apply that plan",
                )
            )
        elif not ctx.gate.allow_alias_takeover:
            blocks.append(
                GateBlock(
                    rule="alias-takeover",
                    reason=(
                        f"{where}: {alias} points at key {current}, which is not a key of "
                        f"stack {ctx.desired.name}; deleting it would take it from whoever "
                        "uses that key"
                    ),
                    unblock=(
                        "re-run with --allow-alias-takeover if the alias should move to this stack"
                    ),
                )
            )
    return blocks


def _bare_key_id(value: str) -> str:
    """`arn:aws:kms:REGION:ACCOUNT:key/ID` -> `ID`; anything else unchanged."""
    return value.rsplit(":key/", 1)[1] if value.startswith("arn:") and ":key/" in value else value
