"""The differ: desired Stack + LiveState -> ordered Plan. Pure: no I/O, no clock (``now`` is
passed in for the gate's usage rule).

Identity is explicit and stateless (see `match_keys`): a key is its ``kmsplan:key`` tag, an
alias its name, a grant its ``kmsplan/<name>`` Name. What kmsplan does not own — keys of other
stacks, keys without tags, grants other services made — is never changed here; at most it is
listed in ``Plan.unmanaged``.

Each Change carries the exact KMS calls that make live match desired. A key created in this
plan is referred to by ``ref("key.<name>")`` until apply knows its id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from kmsplan import policy as policy_lib
from kmsplan.errors import PolicyError
from kmsplan.model import (
    GRANT_PREFIX,
    TAG_DUPLICATE_OF,
    TAG_KEY,
    TAG_PREFIX,
    TAG_PROTECTION,
    TAG_STACK,
    TAG_WINDOW,
    Grant,
    Key,
    KeyState,
    LiveState,
    Stack,
    deletion_protected,
    recorded_window,
)
from kmsplan.plan import adoption as adoption_lib
from kmsplan.plan import cost as cost_lib
from kmsplan.plan import gate as gate_lib
from kmsplan.plan.gate import IMMUTABLE_ATTRIBUTES
from kmsplan.plan.graph import PlanGraph
from kmsplan.plan.reasons import Reason, Why, because
from kmsplan.plan.types import (
    Action,
    Address,
    ApiCall,
    AttributeChange,
    Change,
    GateOptions,
    Plan,
    Resource,
    Step,
    ref,
)
from kmsplan.policy.diff import policy_diff

# Tags with these prefixes are not the user's to add or remove: kmsplan's own and AWS's.
_UNMANAGED_TAG_PREFIXES = (TAG_PREFIX, "aws:")
# kmsplan's own tags that carry manifest settings, by the attribute they show as.
_RESERVED_TAG_ATTRIBUTES = {
    TAG_PROTECTION: "deletion.protected",
    TAG_WINDOW: "deletion.window_days",
}


# The key states in which EnableKey/DisableKey mean what they say (None: not reported).
_TOGGLEABLE_STATES = (KeyState.ENABLED, KeyState.DISABLED, None)

# Operations KMS refuses on a Disabled key with DisabledException (the key-state table of the
# KMS Developer Guide).
_NEED_ENABLED_KEY = ("CreateGrant", "EnableKeyRotation", "DisableKeyRotation")

TEMPORARY_ENABLE_REASON = str(Reason.of(Why.TEMPORARY_ENABLE))


def key_address(name: str) -> Address:
    return Address.of_key(name)


def alias_address(alias: str) -> Address:
    return Address.of_alias(alias)


def grant_address(key: str, grant: str) -> Address:
    return Address.of_grant(key, grant)


def compact_json(document: Mapping[str, Any]) -> str:
    """A policy as sent to KMS: compact JSON, the manifest's member order kept."""
    return json.dumps(document, separators=(",", ":"))


def reserved_tags(stack: str, key: Key) -> dict[str, str]:
    """The tags kmsplan sets on every key it manages: identity and deletion protection."""
    return {
        TAG_STACK: stack,
        TAG_KEY: key.name,
        TAG_PROTECTION: "true" if key.deletion.protected else "false",
        TAG_WINDOW: str(key.deletion.window_days),
    }


def alias_key_type(key: Key) -> tuple[str, str]:
    """What an alias's old and new target must share for UpdateAlias (API_UpdateAlias): both
    symmetric, both HMAC or both asymmetric, and the same key usage."""
    if key.spec == "SYMMETRIC_DEFAULT":
        kind = "symmetric"
    elif key.spec.startswith("HMAC_"):
        kind = "hmac"
    else:
        kind = "asymmetric"
    return kind, key.usage


def live_tag_dict(key: Key) -> dict[str, str]:
    """Every tag the reader saw on a live key, reserved ones included."""
    return dict(key.live_tags) if key.live_tags else dict(key.tags)


def is_protected(live: Key) -> bool:
    """A live key is protected unless its protection tag says exactly "false": a missing or
    garbled tag protects, because protection lives on the key and fails safe."""
    return deletion_protected(live_tag_dict(live))


# ---------------------------------------------------------------------------------------------
# Identity


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyMatch:
    """One logical key: its manifest block (if any) and the live key kmsplan manages as it."""

    name: str
    desired: Key | None
    live: Key | None
    # Earlier keys with this name that are pending deletion (beside their replacement): never
    # changed, only reported.
    others: tuple[Key, ...] = ()
    # Other live keys carrying this name that are not pending deletion — a race of two
    # applies, or tags copied by hand: released by the plan (`release_duplicates`).
    surplus: tuple[Key, ...] = ()


def match_keys(desired: Stack, live: LiveState) -> list[KeyMatch]:
    """Pair manifest blocks with live keys by logical name (the ``kmsplan:key`` tag).

    When several live keys carry the same name, the managed one is (in this order) not pending
    deletion, the one the most aliases and grants already use, the oldest; ties are broken by key
    id so that plans are deterministic. The other live ones are `surplus`.
    """
    by_name: dict[str, list[Key]] = {}
    for key in live.keys:
        by_name.setdefault(key.name, []).append(key)
    declared = {k.name: k for k in desired.keys}
    names = sorted(declared.keys() | by_name.keys())
    matches = []
    for name in names:
        candidates = sorted(by_name.get(name, []), key=_keep_first)
        kept = candidates[0] if candidates else None
        rest = candidates[1:]
        matches.append(
            KeyMatch(
                name=name,
                desired=declared.get(name),
                live=kept,
                others=tuple(k for k in rest if _pending(k)),
                surplus=tuple(k for k in rest if not _pending(k))
                if kept and not _pending(kept)
                else (),
            )
        )
    return matches


def key_uses(key: Key) -> int:
    """How many aliases and grants use a live key."""
    return len(key.aliases) + len(key.grants) + len(key.foreign_grants)


def _keep_first(key: Key) -> tuple[bool, int, str, str]:
    return (_pending(key), -key_uses(key), key.created or "", key.key_id or "")


def _pending(key: Key) -> bool:
    return key.state is not None and key.state.is_pending_deletion


def release_duplicates(match: KeyMatch, stack: str) -> Change | None:
    """The release of the surplus keys of `match` (`key.NAME.duplicates`): for each, a
    TagResource of ``kmsplan:duplicate-of=<kept key id>`` and then an UntagResource of the
    ownership tags — in this order, so that a key is never left untagged and unmarked. Never
    a deletion: the key may hold data only it can decrypt."""
    kept = match.live
    if not match.surplus or kept is None or kept.key_id is None:
        return None
    kept_id = kept.key_id
    calls: list[ApiCall] = []
    attributes: list[AttributeChange] = []
    for key in match.surplus:
        calls.append(
            ApiCall(
                operation="TagResource",
                params={
                    "KeyId": key.key_id,
                    "Tags": [{"TagKey": TAG_DUPLICATE_OF, "TagValue": kept_id}],
                },
            )
        )
        calls.append(
            ApiCall(
                operation="UntagResource",
                params={"KeyId": key.key_id, "TagKeys": [TAG_STACK, TAG_KEY]},
            )
        )
        attributes.append(
            AttributeChange(
                name=f"duplicate {key.key_id}",
                before=f"{TAG_STACK}={stack}, {TAG_KEY}={match.name}",
                after=f"{TAG_DUPLICATE_OF}={kept_id}",
            )
        )
    in_use = key_uses(kept) > max(key_uses(k) for k in match.surplus)
    kept_because = "the key the aliases and grants use" if in_use else "the oldest"
    return Change(
        address=Address.of_key(match.name, Step.DUPLICATES),
        resource=Resource.KEY,
        action=Action.RELEASE,
        key=match.name,
        before={"key_ids": [k.key_id for k in match.surplus]},
        after={"kept_key_id": kept_id},
        attributes=tuple(attributes),
        calls=tuple(calls),
        reason=Reason.of(
            Why.DUPLICATE_KEYS,
            released=", ".join(str(k.key_id) for k in match.surplus),
            kept_id=kept_id,
            kept_because=kept_because,
        ),
    )


# ---------------------------------------------------------------------------------------------
# The diff


def diff(
    desired: Stack, live: LiveState, gate: GateOptions, *, now: datetime | None = None
) -> Plan:
    """The ordered plan that makes `live` match `desired`, with the safety gate applied for the
    run's `gate` flags. `now` is the reference time of the gate's usage rule."""
    now = now or datetime.now(timezone.utc)
    # Keys that blocks adopt are diffed like the stack's own live keys (and gated with them).
    adoptions = adoption_lib.decide(desired, live)
    live = adoption_lib.with_adopted(live, adoptions)
    differ = _Differ(desired=desired, live=live, gate=gate, adoptions=adoptions)
    changes = order_changes(differ.run())
    gated, gate_warnings = gate_lib.check(changes, desired=desired, live=live, gate=gate, now=now)
    return Plan(
        stack=desired.name,
        account_id=live.account_id,
        region=live.region,
        changes=gated,
        gate=gate,
        unmanaged=tuple(differ.unmanaged),
        warnings=(*live.warnings, *differ.warnings, *gate_warnings),
        cost=cost_lib.cost_lines(gated),
    )


def order_changes(changes: Iterable[Change]) -> tuple[Change, ...]:
    """The changes in apply order — a topological order of the plan graph, deterministic —
    each with the dependencies a reviewer sees (the graph's shown edges)."""
    graph = PlanGraph(tuple(changes), declared=False)
    return tuple(replace(c, depends_on=graph.shown[c.address]) for c in graph.topological_order())


def _needs_enabled_key(changes: Iterable[Change]) -> bool:
    return any(call.operation in _NEED_ENABLED_KEY for c in changes for call in c.calls)


class _Differ:
    def __init__(
        self,
        *,
        desired: Stack,
        live: LiveState,
        gate: GateOptions,
        adoptions: Mapping[str, adoption_lib.Decision] | None = None,
    ) -> None:
        self.desired = desired
        adoptions = adoptions or {}
        # Blocks adopting a key in this plan, and blocks whose adoption is refused (their
        # aliases and grants wait until the adoption can go ahead).
        self.adopting = {name for name, d in adoptions.items() if d.adopts}
        self.refused = {name: d for name, d in adoptions.items() if not d.adopts}
        self.live = live
        self.gate = gate
        self.matches = match_keys(desired, live)
        self.by_name = {m.name: m for m in self.matches}
        self.unmanaged: list[str] = []
        self.warnings: list[str] = []
        # key id -> logical name, for every live key of the stack.
        self.stack_key_ids = {k.key_id: k.name for k in live.keys if k.key_id}
        self.released = frozenset(desired.released)
        for name in sorted(self.released - {k.name for k in live.keys}):
            self.warnings.append(
                f"released: {name}: no live key of stack {desired.name} carries this name "
                "(released already?); the entry can be removed"
            )

    def run(self) -> list[Change]:
        """Every change, unordered and without dependencies: the plan graph orders them."""
        key_changes: dict[str, Change] = {}
        grant_changes: list[Change] = []
        disables: list[Change] = []
        releases: list[Change] = []
        for match in self.matches:
            for other in match.others:
                self._note_other(match, other)
            release = release_duplicates(match, self.desired.name)
            if release is not None:
                releases.append(release)
            # The grants first: whether a disabled key must be enabled for this apply depends
            # on them (KMS refuses CreateGrant on a disabled key).
            declared = match.desired is not None and match.name not in self.refused
            grants = self._grants(match) if declared else []
            key_change, disable = self._key(match, grants)
            if key_change is not None:
                key_changes[match.name] = key_change
            grant_changes.extend(grants)
            if disable is not None:
                disables.append(disable)
        aliases = self._aliases(key_changes)
        for match in self.matches:
            if match.live is not None:
                self._note_foreign_grants(match.live)
        return [
            *key_changes.values(),
            *aliases,
            *grant_changes,
            *disables,
            *releases,
            *self._replicas(),
        ]

    def _replicas(self) -> list[Change]:
        """Replicas of multi-Region keys and the aliases in their Regions (plan/replicas.py)."""
        from kmsplan.plan.replicas import primary_region_change, replica_changes

        changes: list[Change] = []
        for match in self.matches:
            d, lv = match.desired, match.live
            if d is not None and lv is not None:
                move = primary_region_change(self.live, d, lv)
                if move is not None:
                    changes.append(move)
            bypass = d is not None and self._bypass(d)
            found, notes = replica_changes(self.desired, self.live, d, lv, bypass=bypass)
            changes.extend(found)
            self.unmanaged.extend(notes)
        return changes

    # ---- keys ----

    def _key(self, match: KeyMatch, grants: list[Change]) -> tuple[Change | None, Change | None]:
        """The key's own change, and its trailing disable (see `_disable`), if any."""
        d, lv = match.desired, match.live
        if d is None:
            if lv is None:
                return None, None
            if match.name in self.released:
                return self._release(lv), None
            return self._undeclared_key(match), None
        if d.name in self.refused:
            return self._refused_adoption(d, self.refused[d.name]), None
        if lv is None:
            created = self._create_key(d)
            # A new key is Enabled until its trailing disable, grants created meanwhile.
            disable = None if d.enabled else self._disable(d, ref(created.address), temporary=False)
            return created, disable
        return self._update_key(d, lv, creates_grant=_needs_enabled_key(grants))

    def _disable(self, d: Key, key_id: Any, *, temporary: bool) -> Change:
        """DisableKey as a change of its own, run after the key's change and grant changes:
        KMS refuses CreateGrant and rotation changes on a disabled key."""
        if temporary:
            reason = Reason.of(Why.DISABLE_AFTER_TEMPORARY_ENABLE, key=key_address(d.name))
        else:
            reason = Reason.of(Why.DISABLE_DECLARED)
        return Change(
            address=Address.of_key(d.name, Step.DISABLE),
            resource=Resource.KEY,
            action=Action.UPDATE,
            key=d.name,
            attributes=(AttributeChange(name="enabled", before=True, after=False),),
            calls=(ApiCall(operation="DisableKey", params={"KeyId": key_id}),),
            reason=reason,
        )

    def _create_key(self, d: Key) -> Change:
        address = key_address(d.name)
        tags = {**reserved_tags(self.desired.name, d), **dict(d.tags)}
        params: dict[str, Any] = {
            "KeySpec": d.spec,
            "KeyUsage": d.usage,
            "MultiRegion": d.multi_region,
            "Description": d.description,
        }
        if d.origin != "AWS_KMS":
            params["Origin"] = d.origin
        if d.policy is not None:
            params["Policy"] = compact_json(d.policy)
        if self._bypass(d):
            params["BypassPolicyLockoutSafetyCheck"] = True
        # Identity and protection tags go in the CreateKey call itself: a key that exists is
        # always findable, even if the apply dies right after this call.
        params["Tags"] = [{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())]
        calls = [ApiCall(operation="CreateKey", params=params)]
        if d.rotation.enabled:
            calls.append(
                ApiCall(
                    operation="EnableKeyRotation", params=self._rotation_params(d, ref(address))
                )
            )
        return Change(
            address=address,
            resource=Resource.KEY,
            action=Action.CREATE,
            key=d.name,
            after=key_summary(d, tags=tags),
            calls=tuple(calls),
            reason=Reason.of(Why.KEY_NOT_FOUND),
            # A new key's policy is reviewed like a changed one: every statement added, and
            # who gains which actions.
            policy_diff=_new_policy_diff(d),
        )

    def _refused_adoption(self, d: Key, decision: adoption_lib.Decision) -> Change:
        """A block whose ``adopt:`` cannot go ahead: shown as an adoption with no calls, which
        the gate blocks with the reason and the way out. Its aliases and grants are planned
        once the adoption can go ahead."""
        self.warnings.append(
            f"{key_address(d.name)}: its aliases and grants are planned once its adoption can "
            "go ahead"
        )
        return Change(
            address=key_address(d.name),
            resource=Resource.KEY,
            action=Action.ADOPT,
            key=d.name,
            after=key_summary(d, tags={**reserved_tags(self.desired.name, d), **dict(d.tags)}),
            reason=Reason.of(Why.ADOPT_DECLARED, ref=decision.ref),
        )

    def _release(self, lv: Key) -> Change | None:
        if lv.state is not None and lv.state.is_pending_deletion:
            # KMS refuses UntagResource on a key pending deletion.
            self.unmanaged.append(
                f"{key_address(lv.name)} ({lv.key_id}) is released but pending deletion"
                f"{' until ' + lv.deletion_date if lv.deletion_date else ''}: left as it is "
                "(cancel its deletion to release it)"
            )
            return None
        for g in lv.grants:
            self.unmanaged.append(
                f"grant {GRANT_PREFIX}{g.name} on {key_address(lv.name)} (grantee {g.grantee}): "
                "stays on the released key, no longer managed by kmsplan"
            )
        return release_change(lv)

    def _undeclared_key(self, match: KeyMatch) -> Change | None:
        lv = match.live
        assert lv is not None
        if lv.state is not None and lv.state.is_pending_deletion:
            self.unmanaged.append(
                f"{key_address(lv.name)} ({lv.key_id}) is pending deletion"
                f"{' until ' + lv.deletion_date if lv.deletion_date else ''} and no longer "
                "declared: left as it is"
            )
            return None
        # The window recorded on the key wins: it is what the manifest said when the key was
        # last applied. A key from before that tag gets the stack's defaults.
        recorded = recorded_window(live_tag_dict(lv))
        window = recorded if recorded is not None else self.desired.default_window_days
        window_source = Why.WINDOW_RECORDED if recorded is not None else Why.WINDOW_DEFAULT
        return Change(
            address=key_address(lv.name),
            resource=Resource.KEY,
            action=Action.DELETE,
            key=lv.name,
            before=key_summary(lv, tags=live_tag_dict(lv)),
            calls=(
                ApiCall(
                    operation="ScheduleKeyDeletion",
                    # The bare key id: moto (and KMS) accept it for every key operation.
                    params={"KeyId": lv.key_id, "PendingWindowInDays": window},
                ),
            ),
            reason=Reason((because(Why.KEY_UNDECLARED), because(window_source, days=window))),
        )

    def _update_key(
        self, d: Key, lv: Key, *, creates_grant: bool
    ) -> tuple[Change | None, Change | None]:
        """The key's update (or restore) and its trailing disable. `creates_grant`: a grant
        change of the key calls CreateGrant, which KMS refuses on a disabled key."""
        key_id = lv.key_id
        restoring = lv.state is not None and lv.state.is_pending_deletion
        attributes: list[AttributeChange] = []
        calls: list[ApiCall] = []
        policy_change: Mapping[str, Any] | None = None
        reasons: list[Any] = []

        for name in IMMUTABLE_ATTRIBUTES:
            if getattr(d, name) != getattr(lv, name):
                attributes.append(
                    AttributeChange(name=name, before=getattr(lv, name), after=getattr(d, name))
                )

        # CancelKeyDeletion leaves the key Disabled (API_CancelKeyDeletion).
        live_enabled = False if restoring else lv.enabled
        if not restoring and lv.state not in _TOGGLEABLE_STATES:
            # Creating, PendingImport, Unavailable...: EnableKey/DisableKey would fail or
            # fight KMS; the key's enabled flag is left alone until the state settles.
            live_enabled = d.enabled
            self.warnings.append(
                f"{key_address(d.name)} is {lv.state.value if lv.state else 'in an unknown state'}"
                ": enabling or disabling it is not planned until it is Enabled or Disabled"
            )
        if restoring:
            calls.append(ApiCall(operation="CancelKeyDeletion", params={"KeyId": key_id}))
            attributes.append(
                AttributeChange(
                    name="state",
                    before=lv.state.value if lv.state else None,
                    after="Enabled" if d.enabled else "Disabled",
                )
            )
            reasons.append(because(Why.KEY_PENDING_DELETION))
        rotation_attributes: list[AttributeChange] = []
        rotation_calls = self._rotation_update(d, lv, key_id, rotation_attributes)
        # A key that is disabled and stays disabled is enabled for this apply when it needs a
        # rotation change or a new grant: KMS refuses those on a disabled key.
        toggleable = restoring or lv.state in _TOGGLEABLE_STATES
        temporary = (
            toggleable
            and not d.enabled
            and not live_enabled
            and bool(rotation_calls or creates_grant)
        )
        # Enable first (disable comes last, in its own change): KMS refuses some changes to a
        # disabled key.
        if (d.enabled and not live_enabled) or temporary:
            calls.append(ApiCall(operation="EnableKey", params={"KeyId": key_id}))
            if d.enabled and not restoring:
                attributes.append(AttributeChange(name="enabled", before=False, after=True))
        if temporary:
            reasons.append(because(Why.TEMPORARY_ENABLE))

        attributes.extend(rotation_attributes)
        calls.extend(rotation_calls)

        if d.description != lv.description:
            attributes.append(
                AttributeChange(name="description", before=lv.description, after=d.description)
            )
            calls.append(
                ApiCall(
                    operation="UpdateKeyDescription",
                    params={"KeyId": key_id, "Description": d.description},
                )
            )

        if d.policy is not None:
            policy_change, label_only = self._policy_update(d, lv)
            if policy_change is not None:
                attributes.append(AttributeChange(name="policy", before=lv.policy, after=d.policy))
                params: dict[str, Any] = {
                    "KeyId": key_id,
                    "PolicyName": "default",
                    "Policy": compact_json(d.policy),
                }
                if self._bypass(d):
                    params["BypassPolicyLockoutSafetyCheck"] = True
                calls.append(ApiCall(operation="PutKeyPolicy", params=params))
                if label_only:
                    reasons.append(because(Why.POLICY_LABELS_ONLY))

        calls.extend(self._tag_update(d, lv, key_id, attributes))

        disable = None
        if not d.enabled and (live_enabled or temporary):
            disable = self._disable(d, key_id, temporary=temporary)
        if not calls and not attributes:
            return None, disable
        immutable = [a.name for a in attributes if a.name in IMMUTABLE_ATTRIBUTES]
        if immutable:
            reasons.insert(0, because(Why.IMMUTABLE, attributes=", ".join(immutable)))
        adopting = d.name in self.adopting
        if adopting:
            reasons.insert(0, because(Why.ADOPTED, ref=d.adopt, key_id=key_id))
            action = Action.ADOPT
        else:
            action = Action.RESTORE if restoring else Action.UPDATE
        change = Change(
            address=key_address(d.name),
            resource=Resource.KEY,
            action=action,
            key=d.name,
            before=key_summary(lv, tags=live_tag_dict(lv)),
            after=key_summary(d, tags={**reserved_tags(self.desired.name, d), **dict(d.tags)}),
            attributes=tuple(attributes),
            calls=tuple(calls),
            reason=Reason(reasons),
            policy_diff=policy_change,
        )
        return change, disable

    def _rotation_params(self, d: Key, key_id: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"KeyId": key_id}
        if d.rotation.period_days is not None:
            params["RotationPeriodInDays"] = d.rotation.period_days
        return params

    def _rotation_update(
        self, d: Key, lv: Key, key_id: Any, attributes: list[AttributeChange]
    ) -> list[ApiCall]:
        want, have = d.rotation, lv.rotation
        if want.enabled and not have.enabled:
            attributes.append(AttributeChange(name="rotation.enabled", before=False, after=True))
            return [ApiCall(operation="EnableKeyRotation", params=self._rotation_params(d, key_id))]
        if not want.enabled and have.enabled:
            attributes.append(AttributeChange(name="rotation.enabled", before=True, after=False))
            return [ApiCall(operation="DisableKeyRotation", params={"KeyId": key_id})]
        if (
            want.enabled
            and want.period_days is not None
            and have.enabled
            and (have.period_days is None)
        ):
            # KMS did not report the live period: nothing to compare it with, so nothing is
            # planned, but the reviewer is told it was not verified.
            self.warnings.append(
                f"{key_address(d.name)}: the live rotation period could not be read from KMS; "
                f"the declared {want.period_days} days were not verified"
            )
        # An unknown live period (KMS did not report it) or an undeclared one never differs.
        if (
            want.enabled
            and want.period_days is not None
            and have.period_days is not None
            and want.period_days != have.period_days
        ):
            attributes.append(
                AttributeChange(
                    name="rotation.period_days", before=have.period_days, after=want.period_days
                )
            )
            return [ApiCall(operation="EnableKeyRotation", params=self._rotation_params(d, key_id))]
        return []

    def _policy_update(self, d: Key, lv: Key) -> tuple[Mapping[str, Any] | None, bool]:
        """(policy diff, label only) when the declared policy must be put; (None, False) when
        live already says the same."""
        assert d.policy is not None
        if d.policy == lv.policy:
            return None, False  # the common case after an apply: the very document we put
        if lv.policy is None:
            # Unreadable live policy: putting the declared one is the only way to know.
            return policy_diff(None, d.policy), False
        try:
            if not policy_lib.equivalent(d.policy, lv.policy):
                return policy_diff(lv.policy, d.policy), False
            if policy_lib.differs_only_in_labels(d.policy, lv.policy):
                return policy_diff(lv.policy, d.policy), True
        except PolicyError:
            # A live document kmsplan cannot parse is replaced by the declared one.
            return policy_diff(None, d.policy), False
        return None, False

    def _tag_update(
        self, d: Key, lv: Key, key_id: Any, attributes: list[AttributeChange]
    ) -> list[ApiCall]:
        want = {**reserved_tags(self.desired.name, d), **dict(d.tags)}
        have = live_tag_dict(lv)
        to_set = {k: v for k, v in sorted(want.items()) if have.get(k) != v}
        to_remove = sorted(
            k for k in have if k not in want and not k.startswith(_UNMANAGED_TAG_PREFIXES)
        )
        calls = []
        for k, v in to_set.items():
            name = _RESERVED_TAG_ATTRIBUTES.get(k, f"tags.{k}")
            attributes.append(AttributeChange(name=name, before=have.get(k), after=v))
        for k in to_remove:
            attributes.append(AttributeChange(name=f"tags.{k}", before=have[k], after=None))
        if to_set:
            calls.append(
                ApiCall(
                    operation="TagResource",
                    params={
                        "KeyId": key_id,
                        "Tags": [{"TagKey": k, "TagValue": v} for k, v in to_set.items()],
                    },
                )
            )
        if to_remove:
            calls.append(
                ApiCall(operation="UntagResource", params={"KeyId": key_id, "TagKeys": to_remove})
            )
        return calls

    def _bypass(self, d: Key) -> bool:
        return d.bypass_policy_lockout_safety_check and self.gate.bypass_policy_lockout_safety_check

    # ---- aliases ----

    def _aliases(self, key_changes: Mapping[str, Change]) -> list[Change]:
        live_targets = {a.name: a.target_key_id for a in self.live.aliases}
        declared: dict[str, KeyMatch] = {}
        for match in self.matches:
            if match.desired is not None:
                for alias in match.desired.aliases:
                    declared[alias] = match
        changes = []
        for alias, match in sorted(declared.items()):
            if match.name in self.refused:
                continue
            change = self._declared_alias(alias, match, live_targets, key_changes.get(match.name))
            if change is not None:
                changes.append(change)
        surplus = {k.key_id for m in self.matches for k in m.surplus}
        by_id = {k.key_id: k for k in self.live.keys if k.key_id and k.key_id not in surplus}
        for alias, target in sorted(live_targets.items()):
            owner = by_id.get(target) if target else None
            if alias in declared or owner is None:
                continue  # declared, or not on a key of this stack: not ours to remove
            if owner.name in self.refused:
                continue  # its block's adoption is refused: nothing planned on it yet
            undeclared = self.by_name[owner.name].desired is None
            if undeclared and owner.state is not None and owner.state.is_pending_deletion:
                continue  # on a key already being deleted: left with it
            if undeclared and owner.name in self.released:
                continue  # a released key keeps its aliases
            changes.append(
                Change(
                    address=alias_address(alias),
                    resource=Resource.ALIAS,
                    action=Action.DELETE,
                    key=owner.name,
                    before={"target_key_id": target, "target_key": owner.name},
                    calls=(ApiCall(operation="DeleteAlias", params={"AliasName": alias}),),
                    reason=Reason.of(Why.NO_LONGER_DECLARED_ON, key=key_address(owner.name)),
                )
            )
        return changes

    def _declared_alias(
        self,
        alias: str,
        match: KeyMatch,
        live_targets: Mapping[str, str | None],
        key_change: Change | None,
    ) -> Change | None:
        lv = match.live
        target: Any = ref(key_address(match.name)) if lv is None else lv.key_id
        after = {"target_key": match.name}
        if alias not in live_targets:
            return Change(
                address=alias_address(alias),
                resource=Resource.ALIAS,
                action=Action.CREATE,
                key=match.name,
                after=after,
                calls=(
                    ApiCall(
                        operation="CreateAlias", params={"AliasName": alias, "TargetKeyId": target}
                    ),
                ),
                reason=Reason.of(Why.DECLARED_ON, key=key_address(match.name)),
            )
        current = live_targets[alias]
        if lv is not None and current == lv.key_id:
            return None
        owner = self.stack_key_ids.get(current) if current else None
        new = key_address(match.name)
        if owner:
            reason = Reason.of(Why.ALIAS_MOVES, old=key_address(owner), new=new)
        else:
            reason = Reason.of(
                Why.ALIAS_TAKEOVER, old_key_id=current, stack=self.desired.name, new=new
            )
        old_key = next((k for k in self.live.keys if current and k.key_id == current), None)
        assert match.desired is not None
        if old_key is not None and alias_key_type(old_key) != alias_key_type(match.desired):
            # UpdateAlias refuses a target of another type or usage (API_UpdateAlias): the
            # alias is deleted and created again, leaving a moment without it.
            calls: tuple[ApiCall, ...] = (
                ApiCall(operation="DeleteAlias", params={"AliasName": alias}),
                ApiCall(
                    operation="CreateAlias", params={"AliasName": alias, "TargetKeyId": target}
                ),
            )
        else:
            calls = (
                ApiCall(
                    operation="UpdateAlias", params={"AliasName": alias, "TargetKeyId": target}
                ),
            )
        return Change(
            address=alias_address(alias),
            resource=Resource.ALIAS,
            action=Action.UPDATE,
            key=match.name,
            before={"target_key_id": current, "target_key": owner},
            after=after,
            attributes=(
                AttributeChange(name="target_key", before=owner or current, after=match.name),
            ),
            calls=calls,
            reason=reason,
        )

    # ---- grants ----

    def _grants(self, match: KeyMatch) -> list[Change]:
        """The grant changes of a declared key; `run` adds their dependency on the key's own
        change, when there is one."""
        d, lv = match.desired, match.live
        assert d is not None
        key_id: Any = ref(key_address(d.name)) if lv is None else lv.key_id
        live_by_name: dict[str, list[Grant]] = {}
        for g in lv.grants if lv is not None else ():
            live_by_name.setdefault(g.name, []).append(g)
        wanted = {g.name: g for g in d.grants}
        changes = []
        for name in sorted(set(wanted) | set(live_by_name)):
            want, have = wanted.get(name), live_by_name.get(name, [])
            address = grant_address(d.name, name)
            if want is None:
                changes.append(
                    Change(
                        address=address,
                        resource=Resource.GRANT,
                        action=Action.DELETE,
                        key=d.name,
                        before=grant_summary(have[0]),
                        calls=tuple(_revoke(key_id, g) for g in have),
                        reason=Reason.of(Why.NO_LONGER_DECLARED_ON, key=key_address(d.name)),
                    )
                )
                continue
            same = [g for g in have if g == want]
            stale = [g for g in have if g is not (same[0] if same else None)]
            if same and not stale:
                continue
            # The new grant first, then the old one revoked: KMS allows two grants with one
            # name, and the grantee never loses access in between (nor for good, if the
            # create fails). A crash between the two leaves a duplicate that the next plan
            # revokes.
            calls = (
                []
                if same
                else [ApiCall(operation="CreateGrant", params=create_grant_params(key_id, want))]
            )
            calls += [_revoke(key_id, g) for g in stale]
            if not have:
                action, reason = (
                    Action.CREATE,
                    Reason.of(Why.DECLARED_ON, key=key_address(d.name)),
                )
            elif same:
                action, reason = Action.UPDATE, Reason.of(Why.GRANT_DUPLICATES)
            else:
                action, reason = Action.UPDATE, Reason.of(Why.GRANT_REPLACED)
            changes.append(
                Change(
                    address=address,
                    resource=Resource.GRANT,
                    action=action,
                    key=d.name,
                    before=grant_summary(have[0]) if have else None,
                    after=grant_summary(want),
                    attributes=_grant_attributes(have[0], want) if have and not same else (),
                    calls=tuple(calls),
                    reason=reason,
                )
            )
        return changes

    # ---- notes ----

    def _note_foreign_grants(self, lv: Key) -> None:
        for g in lv.foreign_grants:
            label = g.name or g.grant_id or "(unnamed)"
            self.unmanaged.append(
                f"grant {label} on {key_address(lv.name)} (grantee {g.grantee}): not named "
                f"{GRANT_PREFIX}<name>, never changed by kmsplan"
            )

    def _note_other(self, match: KeyMatch, other: Key) -> None:
        self.unmanaged.append(
            f"{key_address(match.name)}: an earlier key {other.key_id} with this name is "
            "pending deletion: left as it is"
        )


def release_change(
    live: Key,
    *,
    extra_tags: Iterable[str] = (),
    address: Address | None = None,
    reason: Reason | None = None,
) -> Change:
    """kmsplan stops managing `live`: one UntagResource of every ``kmsplan:`` tag on it (and
    `extra_tags`), nothing else — the key, its policy, aliases and grants stay as they are.
    `address` defaults to the key's own; a second key carrying one name needs its own."""
    have = live_tag_dict(live)
    removed = sorted({k for k in have if k.startswith(TAG_PREFIX)} | set(extra_tags))
    return Change(
        address=address or key_address(live.name),
        resource=Resource.KEY,
        action=Action.RELEASE,
        key=live.name,
        before=key_summary(live, tags=have),
        attributes=tuple(
            AttributeChange(
                name=_RESERVED_TAG_ATTRIBUTES.get(k, f"tags.{k}"), before=have.get(k), after=None
            )
            for k in removed
        ),
        calls=(
            ApiCall(operation="UntagResource", params={"KeyId": live.key_id, "TagKeys": removed}),
        ),
        reason=reason if reason is not None else Reason.of(Why.RELEASED),
    )


def _new_policy_diff(d: Key) -> Mapping[str, Any] | None:
    if d.policy is None:
        return None  # KMS's default policy: nothing declared to review
    try:
        return policy_diff(None, d.policy)
    except PolicyError:
        return None  # the lockout rule of the gate reports a document it cannot parse


def _revoke(key_id: Any, g: Grant) -> ApiCall:
    return ApiCall(operation="RevokeGrant", params={"KeyId": key_id, "GrantId": g.grant_id})


def create_grant_params(key_id: Any, g: Grant) -> dict[str, Any]:
    params: dict[str, Any] = {
        "KeyId": key_id,
        "GranteePrincipal": g.grantee,
        "Operations": list(g.operations),
        "Name": GRANT_PREFIX + g.name,
    }
    if g.retiring_principal is not None:
        params["RetiringPrincipal"] = g.retiring_principal
    if g.constraints is not None:
        if g.constraints.encryption_context_subset is not None:
            params["Constraints"] = {
                "EncryptionContextSubset": dict(g.constraints.encryption_context_subset)
            }
        elif g.constraints.encryption_context_equals is not None:
            params["Constraints"] = {
                "EncryptionContextEquals": dict(g.constraints.encryption_context_equals)
            }
    return params


def grant_summary(g: Grant) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "name": g.name,
        "grantee": g.grantee,
        "operations": list(g.operations),
        "retiring_principal": g.retiring_principal,
        "constraints": None,
    }
    if g.constraints is not None:
        if g.constraints.encryption_context_subset is not None:
            summary["constraints"] = {
                "encryption_context_subset": dict(g.constraints.encryption_context_subset)
            }
        elif g.constraints.encryption_context_equals is not None:
            summary["constraints"] = {
                "encryption_context_equals": dict(g.constraints.encryption_context_equals)
            }
    if g.grant_id is not None:
        summary["grant_id"] = g.grant_id
    return summary


def _grant_attributes(have: Grant, want: Grant) -> tuple[AttributeChange, ...]:
    before, after = grant_summary(have), grant_summary(want)
    return tuple(
        AttributeChange(name=name, before=before[name], after=after[name])
        for name in ("grantee", "operations", "retiring_principal", "constraints")
        if before[name] != after[name]
    )


def key_summary(key: Key, *, tags: Mapping[str, str]) -> dict[str, Any]:
    """What a reviewer needs to see of a key in before/after (the policy travels in
    ``policy_diff`` and the calls, not here)."""
    summary: dict[str, Any] = {
        "description": key.description,
        "spec": key.spec,
        "usage": key.usage,
        "origin": key.origin,
        "multi_region": key.multi_region,
        "enabled": key.enabled,
        "rotation": {"enabled": key.rotation.enabled, "period_days": key.rotation.period_days},
        "deletion_protected": deletion_protected(tags),
        "deletion_window_days": recorded_window(tags) or key.deletion.window_days,
        "tags": {k: v for k, v in sorted(tags.items()) if not k.startswith(TAG_PREFIX)},
        "aliases": list(key.aliases),
    }
    if key.key_id is not None:
        summary["key_id"] = key.key_id
        summary["state"] = key.state.value if key.state else None
    return summary
