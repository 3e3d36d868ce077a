"""The plan graph: which change must be done before which — the one place order comes from.

The graph is built from a plan's changes by named edge rules (as Terraform builds its apply
graph with small transformers, each adding one kind of edge). Two readers use it:

- the differ: the plan's order is a topological order of the graph (deterministic: among
  changes the graph leaves free, `reading_rank` then address), and each change's
  ``depends_on`` — what a reviewer sees under "after:" — holds the edges of the rules marked
  `shown`;
- the applier: it starts a change when its count of unmet dependencies reaches zero, and
  skips what depends on a failure.

Every key deletion waits for every change that is not a key deletion (deleting a key is the one
step that cannot be undone). Written as edges that would be N×M; the graph holds it as one
barrier node instead (`BARRIER`: before it, every other change; after it, the key
deletions), so building, ordering and scheduling stay linear in the number of changes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kmsplan.plan.actions import Action
from kmsplan.plan.address import Resource, Step
from kmsplan.plan.types import Change, is_ref

# The barrier before key deletions. Not an address: it holds a space, which no address does.
BARRIER = "(every change before key deletions)"


class CycleError(ValueError):
    """The changes' dependencies form a cycle (only a hand-edited plan can)."""


def is_key_deletion(change: Change) -> bool:
    """ScheduleKeyDeletion of a key or of a replica (a replica is a key in its Region)."""
    return (
        change.resource in (Resource.KEY, Resource.REPLICA)
        and change.action is Action.DELETE
        and change.address.step is None
    )


def is_own_key_change(change: Change) -> bool:
    """A key's own create, update or restore (not its deletion, not a step of it)."""
    return (
        change.resource is Resource.KEY
        and change.action is not Action.DELETE
        and change.address.step is None
    )


# ---------------------------------------------------------------------------------------------
# The edge rules


@dataclass(frozen=True, slots=True)
class _Index:
    """What the rules look up, computed once per graph."""

    changes: Sequence[Change]
    own_key_change: Mapping[str, str]  # key name -> address of its own change
    grant_changes: Mapping[str, tuple[str, ...]]  # key name -> its grant changes, in order
    alias_changes_by_old_target: Mapping[str, tuple[str, ...]]  # key id -> alias changes
    replica_changes: Mapping[tuple[str, str], str]  # (key name, Region) -> replica change
    primary_moves: Mapping[str, str]  # key name -> its UpdatePrimaryRegion change

    @classmethod
    def of(cls, changes: Sequence[Change]) -> _Index:
        own: dict[str, str] = {}
        grants: dict[str, list[str]] = {}
        movers: dict[str, list[str]] = {}
        replicas: dict[tuple[str, str], str] = {}
        moves: dict[str, str] = {}
        for c in changes:
            if c.address.step is Step.PRIMARY_REGION:
                moves[c.key] = c.address
            elif c.resource is Resource.REPLICA and c.address.region is not None:
                replicas[(c.key, c.address.region)] = c.address
            if is_own_key_change(c):
                own[c.key] = c.address
            elif c.resource is Resource.GRANT:
                grants.setdefault(c.key, []).append(c.address)
            elif c.resource is Resource.ALIAS:
                old_target = (c.before or {}).get("target_key_id")
                if isinstance(old_target, str) and old_target:
                    movers.setdefault(old_target, []).append(c.address)
        return cls(
            changes=changes,
            own_key_change=own,
            grant_changes={k: tuple(v) for k, v in grants.items()},
            alias_changes_by_old_target={k: tuple(sorted(v)) for k, v in movers.items()},
            replica_changes=replicas,
            primary_moves=moves,
        )


Edges = Iterator[tuple[str, str]]  # (before, after)


@dataclass(frozen=True, slots=True)
class EdgeRule:
    name: str
    # Recorded in the plan's depends_on, so reviewers see it under "after:". The others are
    # plain consequences of the kinds of change (a reference, "deletions last") and would
    # only repeat what the order already says.
    shown: bool
    edges: Callable[[_Index], Edges]


def _references(index: _Index) -> Edges:
    """A call that names a key this plan creates (``{"$ref": "key.x"}``) waits for it."""
    for c in index.changes:
        for call in c.calls:
            for target in refs_in(call.params):
                yield target, c.address


def _key_before_its_aliases_and_grants(index: _Index) -> Edges:
    """An alias or grant being created or changed waits for its key's own change."""
    for c in index.changes:
        if c.resource in (Resource.ALIAS, Resource.GRANT) and not c.destructive:
            own = index.own_key_change.get(c.key)
            if own is not None:
                yield own, c.address


def _key_before_removals_on_it(index: _Index) -> Edges:
    """An alias or grant being removed from a key that also changes waits for that change
    (a restore re-enables the key the removal acts on)."""
    for c in index.changes:
        if c.resource in (Resource.ALIAS, Resource.GRANT) and c.destructive:
            own = index.own_key_change.get(c.key)
            if own is not None:
                yield own, c.address


def _disable_after_the_key_and_its_grants(index: _Index) -> Edges:
    """A key's trailing disable waits for the key's own change and every grant change of the
    key: KMS refuses CreateGrant and rotation changes on a disabled key."""
    for c in index.changes:
        if c.address.step is Step.DISABLE:
            own = index.own_key_change.get(c.key)
            if own is not None:
                yield own, c.address
            for grant in index.grant_changes.get(c.key, ()):
                yield grant, c.address


def _alias_moves_before_old_key_deletion(index: _Index) -> Edges:
    """A key's deletion waits for the alias changes that move or delete its aliases."""
    for c in index.changes:
        if is_key_deletion(c):
            key_id = (c.before or {}).get("key_id")
            for mover in index.alias_changes_by_old_target.get(str(key_id), ()):
                yield mover, c.address


def _key_before_its_replicas(index: _Index) -> Edges:
    """A replica being created or changed waits for its primary's own change (a new key is
    replicated once it exists), and for a move of the primary's Region."""
    for c in index.changes:
        if c.resource is Resource.REPLICA and not c.destructive:
            own = index.own_key_change.get(c.key)
            if own is not None:
                yield own, c.address
            if c.key in index.primary_moves:
                yield index.primary_moves[c.key], c.address


def _primary_region_before_the_key(index: _Index) -> Edges:
    """The key's other changes wait for UpdatePrimaryRegion: until it is done, the key in
    the plan's Region is a replica, which takes no change of a shared property."""
    for c in index.changes:
        if is_own_key_change(c) and c.key in index.primary_moves:
            yield index.primary_moves[c.key], c.address


def _replica_before_its_aliases(index: _Index) -> Edges:
    """An alias in a replica's Region waits for the replica's change (created, restored)."""
    for c in index.changes:
        if c.resource is Resource.ALIAS and c.address.region is not None and not c.destructive:
            replica = index.replica_changes.get((c.key, c.address.region))
            if replica is not None:
                yield replica, c.address


def _primary_deletion_after_its_replicas(index: _Index) -> Edges:
    """KMS deletes a primary only after its replicas: the primary's deletion waits for theirs."""
    for c in index.changes:
        if is_key_deletion(c) and c.resource is Resource.KEY:
            for (key, _region), replica in sorted(index.replica_changes.items()):
                if key == c.key:
                    yield replica, c.address


def _deletions_last(index: _Index) -> Edges:
    """Every key deletion waits for every change that is not a key deletion (through the
    barrier: N+M edges, not N×M)."""
    for c in index.changes:
        if is_key_deletion(c):
            yield BARRIER, c.address
        else:
            yield c.address, BARRIER


# In this order: it is the order of each change's dependencies in `PlanGraph.dependencies`.
RULES: tuple[EdgeRule, ...] = (
    EdgeRule("references", shown=False, edges=_references),
    EdgeRule(
        "key_before_its_aliases_and_grants", shown=True, edges=_key_before_its_aliases_and_grants
    ),
    EdgeRule("key_before_removals_on_it", shown=False, edges=_key_before_removals_on_it),
    EdgeRule(
        "disable_after_the_key_and_its_grants",
        shown=True,
        edges=_disable_after_the_key_and_its_grants,
    ),
    EdgeRule(
        "alias_moves_before_old_key_deletion",
        shown=True,
        edges=_alias_moves_before_old_key_deletion,
    ),
    EdgeRule("key_before_its_replicas", shown=True, edges=_key_before_its_replicas),
    EdgeRule("primary_region_before_the_key", shown=True, edges=_primary_region_before_the_key),
    EdgeRule("replica_before_its_aliases", shown=True, edges=_replica_before_its_aliases),
    EdgeRule(
        "primary_deletion_after_its_replicas",
        shown=True,
        edges=_primary_deletion_after_its_replicas,
    ),
    EdgeRule("deletions_last", shown=False, edges=_deletions_last),
)


# Among changes the graph leaves free, the order a reviewer reads best: keys, then aliases,
# then grants; removals of grants and aliases; a key's follow-up steps; key deletions last.
# A tie-break only: every edge above already agrees with it.
def reading_rank(change: Change) -> int:
    if change.address.step is Step.PRIMARY_REGION:
        return 0
    if change.address.step is not None:
        return 5
    if change.destructive:
        return {Resource.GRANT: 3, Resource.ALIAS: 4, Resource.KEY: 6, Resource.REPLICA: 6}[
            change.resource
        ]
    return {Resource.KEY: 0, Resource.REPLICA: 1, Resource.ALIAS: 1, Resource.GRANT: 2}[
        change.resource
    ]


# ---------------------------------------------------------------------------------------------
# The graph


class PlanGraph:
    """The dependency graph of a sequence of changes.

    `declared`: also honour each change's own ``depends_on`` (a plan made by the differ, or
    read back from a file, carries them); the differ builds its graph before it sets them.
    """

    def __init__(self, changes: Sequence[Change], *, declared: bool = True) -> None:
        self.changes = tuple(changes)
        self.by_address: dict[str, Change] = {c.address: c for c in self.changes}
        self.nodes: tuple[str, ...] = (*self.by_address, BARRIER)
        # Insertion-ordered dicts: each node's dependencies in rule order, no repeats.
        preds: dict[str, dict[str, None]] = {}
        shown: dict[str, dict[str, None]] = {}
        known = self.by_address.keys() | {BARRIER}
        if declared:
            for c in self.changes:
                for before in c.depends_on:
                    if before in self.by_address and before != c.address:
                        preds.setdefault(c.address, {})[before] = None
        index = _Index.of(self.changes)
        for rule in RULES:
            for before, after in rule.edges(index):
                if before == after or before not in known or after not in known:
                    continue
                preds.setdefault(after, {})[before] = None
                if rule.shown:
                    shown.setdefault(after, {})[before] = None
        self.preds: dict[str, tuple[str, ...]] = {
            node: tuple(preds[node]) if node in preds else () for node in self.nodes
        }
        self.shown: Mapping[str, tuple[str, ...]] = _Shown(
            {after: tuple(before) for after, before in shown.items()}
        )
        succs: dict[str, list[str]] = {node: [] for node in self.nodes}
        for node, befores in preds.items():
            for b in befores:
                succs[b].append(node)
        self.succs: dict[str, list[str]] = succs

    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """For each change, every change that must be done before it starts (the barrier
        spelled out: the key deletions' lists hold every other change). For checks and tests;
        the applier walks the compact graph."""
        barrier = self.preds[BARRIER]
        result: dict[str, tuple[str, ...]] = {}
        for c in self.changes:
            expanded: dict[str, None] = {}
            for before in self.preds[c.address]:
                for a in barrier if before == BARRIER else (before,):
                    if a != c.address:
                        expanded[a] = None
            result[c.address] = tuple(expanded)
        return result

    def unmet_counts(self) -> dict[str, int]:
        return {node: len(before) for node, before in self.preds.items()}

    def topological_order(self, rank: Callable[[Change], int] = reading_rank) -> tuple[Change, ...]:
        """The changes in an order that respects every edge; among free changes, lowest
        `rank`, then address. Raises CycleError."""
        unmet = self.unmet_counts()
        heap: list[tuple[int, str]] = []

        def push(node: str) -> None:
            if node == BARRIER:
                # Released as soon as everything before it is: what follows it ranks last.
                heapq.heappush(heap, (-1, node))
            else:
                heapq.heappush(heap, (rank(self.by_address[node]), node))

        for node, count in unmet.items():
            if count == 0:
                push(node)
        ordered: list[Change] = []
        while heap:
            _, node = heapq.heappop(heap)
            if node != BARRIER:
                ordered.append(self.by_address[node])
            for after in self.succs[node]:
                unmet[after] -= 1
                if unmet[after] == 0:
                    push(after)
        if len(ordered) != len(self.changes):
            raise CycleError("the changes' dependencies form a cycle")
        return tuple(ordered)

    def has_cycle(self) -> bool:
        try:
            self.topological_order()
        except CycleError:
            return True
        return False


def refs_in(value: Any) -> list[str]:
    """The addresses that `value` (call parameters) refers to with ``{"$ref": ...}``."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        # Exact-type checks first: this runs on every parameter of a 10,000-key plan.
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is dict or isinstance(item, Mapping):
            if is_ref(item):
                found.append(str(item["$ref"]))
            else:
                stack.extend(reversed(list(item.values())))
        elif kind is list or kind is tuple:
            stack.extend(reversed(item))
    return found


class _Shown(dict[str, tuple[str, ...]]):
    """Shown dependencies by address; a change without any has none (not a KeyError)."""

    def __missing__(self, address: str) -> tuple[str, ...]:
        return ()
