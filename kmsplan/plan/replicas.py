"""The changes of a multi-Region key's replicas, and of the aliases in their Regions. Pure.

A replica is a resource of its own (``replica.<key>.<region>``) whose changes go to its Region
(`Change.placement`); only its ReplicateKey is sent to the primary's Region, which is how KMS
takes it. A replica shares its primary's key id, so a replica of a key this plan creates names
the key by ``ref("key.<name>")``, and so do the aliases in its Region.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kmsplan.model import (
    Key,
    LiveState,
    Placement,
    Replica,
    Stack,
    recorded_window,
)
from kmsplan.plan.differ import (
    _RESERVED_TAG_ATTRIBUTES,
    _UNMANAGED_TAG_PREFIXES,
    compact_json,
    key_address,
    reserved_tags,
)
from kmsplan.plan.reasons import Reason, Why, because
from kmsplan.plan.types import (
    Action,
    Address,
    ApiCall,
    AttributeChange,
    Change,
    Resource,
    Step,
    ref,
)
from kmsplan.policy.diff import policy_diff


def replica_changes(
    desired: Stack, live: LiveState, d: Key | None, lv: Key | None, *, bypass: bool
) -> tuple[list[Change], list[str]]:
    """The changes of key `d`/`lv`'s replicas and their aliases, and notes for reviewers.
    `bypass`: the key and the run both ask to skip KMS's policy lockout check."""
    planner = _Replicas(desired=desired, live=live, d=d, lv=lv, bypass=bypass)
    return planner.run(), planner.notes


def primary_region_change(live: LiveState, d: Key, lv: Key) -> Change | None:
    """UpdatePrimaryRegion, when the manifest's Region (where the plan runs) holds a replica
    of the key: the key there becomes the primary. Sent to the current primary's Region."""
    old = lv.primary_region
    if not (d.multi_region and lv.multi_region and old and old != live.region):
        return None
    return Change(
        address=Address.of_key(d.name, Step.PRIMARY_REGION),
        resource=Resource.KEY,
        action=Action.UPDATE,
        key=d.name,
        attributes=(AttributeChange(name="primary_region", before=old, after=live.region),),
        calls=(
            ApiCall(
                operation="UpdatePrimaryRegion",
                params={"KeyId": lv.key_id, "PrimaryRegion": live.region},
            ),
        ),
        reason=Reason.of(Why.PRIMARY_REGION_MOVES, old=old, new=live.region),
        placement=Placement(account_id=live.account_id, region=old),
    )


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())]


def replica_summary(replica: Replica, *, tags: Mapping[str, str]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "region": replica.region,
        "description": replica.description,
        "enabled": replica.enabled,
        "tags": {
            k: v for k, v in sorted(tags.items()) if not k.startswith(_UNMANAGED_TAG_PREFIXES)
        },
        "aliases": list(replica.aliases),
    }
    if replica.state is not None:
        summary["state"] = replica.state.value
    return summary


class _Replicas:
    def __init__(
        self, *, desired: Stack, live: LiveState, d: Key | None, lv: Key | None, bypass: bool
    ) -> None:
        self.desired = desired
        self.live = live
        self.d = d
        self.lv = lv
        self.bypass = bypass
        self.name = (d or lv).name  # type: ignore[union-attr]
        self.key_id: Any = lv.key_id if lv is not None else ref(key_address(self.name))
        self.notes: list[str] = []

    def run(self) -> list[Change]:
        d, lv = self.d, self.lv
        wanted = {r.region: r for r in d.replicas} if d is not None and d.multi_region else {}
        if lv is not None and not lv.multi_region:
            wanted = {}  # the immutable rule blocks the key; nothing can be replicated
        have = {r.region: r for r in lv.replicas} if lv is not None else {}
        changes: list[Change] = []
        for region in sorted(set(wanted) | set(have)):
            want, live_replica = wanted.get(region), have.get(region)
            placement = Placement(account_id=self.live.account_id, region=region)
            if want is None:
                assert live_replica is not None
                changes.extend(self._undeclared(live_replica, placement))
                continue
            change = (
                self._create(want, placement)
                if live_replica is None
                else self._update(want, live_replica, placement)
            )
            if change is not None:
                changes.append(change)
            changes.extend(self._aliases(want, live_replica, placement))
        return changes

    # ---- the replica ----

    def _tags(self, replica: Replica) -> dict[str, str]:
        assert self.d is not None
        return {**reserved_tags(self.desired.name, self.d), **dict(replica.tags)}

    def _create(self, want: Replica, placement: Placement) -> Change:
        tags = self._tags(want)
        params: dict[str, Any] = {
            "KeyId": self.key_id,
            "ReplicaRegion": want.region,
            "Description": want.description,
        }
        if want.policy is not None:
            params["Policy"] = compact_json(want.policy)
        if self.bypass:
            params["BypassPolicyLockoutSafetyCheck"] = True
        # The ownership and protection tags travel in ReplicateKey itself.
        params["Tags"] = _tag_list(tags)
        calls = [ApiCall(operation="ReplicateKey", params=params)]
        if not want.enabled:
            calls.append(ApiCall(operation="DisableKey", params={"KeyId": self.key_id}))
        return Change(
            address=Address.of_replica(self.name, want.region),
            resource=Resource.REPLICA,
            action=Action.CREATE,
            key=self.name,
            after=replica_summary(want, tags=tags),
            calls=tuple(calls),
            reason=Reason.of(Why.REPLICA_NOT_FOUND, region=want.region),
            policy_diff=policy_diff(None, want.policy) if want.policy is not None else None,
            placement=placement,
        )

    def _update(self, want: Replica, have: Replica, placement: Placement) -> Change | None:
        key_id = self.key_id
        attributes: list[AttributeChange] = []
        calls: list[ApiCall] = []
        reasons: list[Any] = []
        restoring = have.state is not None and have.state.is_pending_deletion
        live_enabled = False if restoring else have.enabled
        if restoring:
            calls.append(ApiCall(operation="CancelKeyDeletion", params={"KeyId": key_id}))
            attributes.append(
                AttributeChange(
                    name="state",
                    before=have.state.value if have.state else None,
                    after="Enabled" if want.enabled else "Disabled",
                )
            )
            reasons.append(because(Why.KEY_PENDING_DELETION))
        if want.enabled and not live_enabled:
            calls.append(ApiCall(operation="EnableKey", params={"KeyId": key_id}))
            if not restoring:
                attributes.append(AttributeChange(name="enabled", before=False, after=True))
        if want.description != have.description:
            attributes.append(
                AttributeChange(name="description", before=have.description, after=want.description)
            )
            calls.append(
                ApiCall(
                    operation="UpdateKeyDescription",
                    params={"KeyId": key_id, "Description": want.description},
                )
            )
        policy_change = None
        if want.policy is not None and want.policy != have.policy:
            policy_change = _policy_change(want.policy, have.policy)
            if policy_change is not None:
                attributes.append(
                    AttributeChange(name="policy", before=have.policy, after=want.policy)
                )
                params: dict[str, Any] = {
                    "KeyId": key_id,
                    "PolicyName": "default",
                    "Policy": compact_json(want.policy),
                }
                if self.bypass:
                    params["BypassPolicyLockoutSafetyCheck"] = True
                calls.append(ApiCall(operation="PutKeyPolicy", params=params))
        calls.extend(self._tag_calls(want, have, attributes))
        if not want.enabled and live_enabled:
            calls.append(ApiCall(operation="DisableKey", params={"KeyId": key_id}))
            attributes.append(AttributeChange(name="enabled", before=True, after=False))
        if not calls:
            return None
        return Change(
            address=Address.of_replica(self.name, want.region),
            resource=Resource.REPLICA,
            action=Action.RESTORE if restoring else Action.UPDATE,
            key=self.name,
            before=replica_summary(have, tags=dict(have.live_tags)),
            after=replica_summary(want, tags=self._tags(want)),
            attributes=tuple(attributes),
            calls=tuple(calls),
            reason=Reason(reasons),
            policy_diff=policy_change,
            placement=placement,
        )

    def _tag_calls(
        self, want: Replica, have: Replica, attributes: list[AttributeChange]
    ) -> list[ApiCall]:
        wanted = self._tags(want)
        live = dict(have.live_tags)
        to_set = {k: v for k, v in sorted(wanted.items()) if live.get(k) != v}
        to_remove = sorted(
            k for k in live if k not in wanted and not k.startswith(_UNMANAGED_TAG_PREFIXES)
        )
        for k, v in to_set.items():
            name = _RESERVED_TAG_ATTRIBUTES.get(k, f"tags.{k}")
            attributes.append(AttributeChange(name=name, before=live.get(k), after=v))
        for k in to_remove:
            attributes.append(AttributeChange(name=f"tags.{k}", before=live[k], after=None))
        calls = []
        if to_set:
            calls.append(
                ApiCall(
                    operation="TagResource",
                    params={"KeyId": self.key_id, "Tags": _tag_list(to_set)},
                )
            )
        if to_remove:
            calls.append(
                ApiCall(
                    operation="UntagResource", params={"KeyId": self.key_id, "TagKeys": to_remove}
                )
            )
        return calls

    def _undeclared(self, have: Replica, placement: Placement) -> list[Change]:
        """A live replica the manifests no longer declare: scheduled for deletion through the
        gate (protection tag, --allow-delete, usage), its aliases deleted first."""
        where = have.region
        if have.state is not None and have.state.is_pending_deletion:
            self.notes.append(
                f"{Address.of_replica(self.name, where)} is pending deletion"
                f"{' until ' + have.deletion_date if have.deletion_date else ''} and no "
                "longer declared: left as it is"
            )
            return []
        tags = dict(have.live_tags)
        recorded = recorded_window(tags)
        window = recorded if recorded is not None else self.desired.default_window_days
        window_source = Why.WINDOW_RECORDED if recorded is not None else Why.WINDOW_DEFAULT
        changes = [self._delete_alias(alias, where, placement) for alias in have.aliases]
        changes.append(
            Change(
                address=Address.of_replica(self.name, where),
                resource=Resource.REPLICA,
                action=Action.DELETE,
                key=self.name,
                before={
                    **replica_summary(have, tags=tags),
                    "key_id": self.lv.key_id if self.lv else None,
                },
                calls=(
                    ApiCall(
                        operation="ScheduleKeyDeletion",
                        params={"KeyId": self.key_id, "PendingWindowInDays": window},
                    ),
                ),
                reason=Reason(
                    (
                        because(Why.REPLICA_UNDECLARED, region=where),
                        because(window_source, days=window),
                    )
                ),
                placement=placement,
            )
        )
        return changes

    # ---- aliases in the replica's Region ----

    def _aliases(
        self, want: Replica, have: Replica | None, placement: Placement
    ) -> Iterable[Change]:
        region = want.region
        targets = {a.name: a.target_key_id for a in self.live.regional_aliases.get(region, ())}
        for alias in want.aliases:
            current = targets.get(alias)
            if alias not in targets:
                yield Change(
                    address=Address.of_alias(alias, region),
                    resource=Resource.ALIAS,
                    action=Action.CREATE,
                    key=self.name,
                    after={"target_key": self.name, "region": region},
                    calls=(
                        ApiCall(
                            operation="CreateAlias",
                            params={"AliasName": alias, "TargetKeyId": self.key_id},
                        ),
                    ),
                    reason=Reason.of(Why.DECLARED_ON, key=Address.of_replica(self.name, region)),
                    placement=placement,
                )
            elif self.lv is None or current != self.lv.key_id:
                yield Change(
                    address=Address.of_alias(alias, region),
                    resource=Resource.ALIAS,
                    action=Action.UPDATE,
                    key=self.name,
                    before={"target_key_id": current, "target_key": None},
                    after={"target_key": self.name, "region": region},
                    attributes=(
                        AttributeChange(name="target_key", before=current, after=self.name),
                    ),
                    calls=(
                        ApiCall(
                            operation="UpdateAlias",
                            params={"AliasName": alias, "TargetKeyId": self.key_id},
                        ),
                    ),
                    reason=Reason.of(
                        Why.ALIAS_TAKEOVER,
                        old_key_id=current,
                        stack=self.desired.name,
                        new=Address.of_replica(self.name, region),
                    ),
                    placement=placement,
                )
        for alias in have.aliases if have is not None else ():
            if alias not in want.aliases:
                yield self._delete_alias(alias, region, placement)

    def _delete_alias(self, alias: str, region: str, placement: Placement) -> Change:
        return Change(
            address=Address.of_alias(alias, region),
            resource=Resource.ALIAS,
            action=Action.DELETE,
            key=self.name,
            before={"target_key_id": self.lv.key_id if self.lv else None, "target_key": self.name},
            calls=(ApiCall(operation="DeleteAlias", params={"AliasName": alias}),),
            reason=Reason.of(Why.NO_LONGER_DECLARED_ON, key=Address.of_replica(self.name, region)),
            placement=placement,
        )


def _policy_change(
    want: Mapping[str, Any], have: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The statement diff when the declared policy must be put; None when live says the same."""
    from kmsplan import policy as policy_lib
    from kmsplan.errors import PolicyError

    if have is None:
        return policy_diff(None, want)
    try:
        if policy_lib.equivalent(dict(want), dict(have)) and not policy_lib.differs_only_in_labels(
            dict(want), dict(have)
        ):
            return None
    except PolicyError:
        return policy_diff(None, want)
    return policy_diff(have, want)
