"""The plan graph: named edge rules, a deterministic topological order, cycles refused, and
the barrier that keeps "key deletions last" linear."""

from __future__ import annotations

import random

import pytest

from kmsplan.plan.graph import RULES, PlanGraph, reading_rank
from kmsplan.plan.types import Action, Address, ApiCall, Change, Resource, Step, ref


def key(name: str, action: Action = Action.UPDATE, **extra: object) -> Change:
    return Change(
        address=Address.of_key(name), resource=Resource.KEY, action=action, key=name, **extra
    )


def alias(name: str, key_name: str, action: Action = Action.CREATE, **extra: object) -> Change:
    return Change(
        address=Address.of_alias(f"alias/{name}"),
        resource=Resource.ALIAS,
        action=action,
        key=key_name,
        **extra,
    )


def grant(key_name: str, name: str, action: Action = Action.CREATE) -> Change:
    return Change(
        address=Address.of_grant(key_name, name),
        resource=Resource.GRANT,
        action=action,
        key=key_name,
    )


def disable(name: str) -> Change:
    return Change(
        address=Address.of_key(name, Step.DISABLE),
        resource=Resource.KEY,
        action=Action.UPDATE,
        key=name,
    )


def test_every_rule_has_a_name_and_a_docstring() -> None:
    names = [rule.name for rule in RULES]
    assert len(set(names)) == len(names)
    assert all(rule.edges.__doc__ for rule in RULES)


def test_shown_edges_are_what_reviewers_see_and_implicit_ones_are_not() -> None:
    graph = PlanGraph(
        [
            key("a", Action.CREATE),
            alias("a", "a", calls=(ApiCall(operation="CreateAlias", params={"T": ref("key.a")}),)),
            grant("a", "g"),
            grant("a", "old", Action.DELETE),
            disable("a"),
        ]
    )
    assert graph.shown["alias.alias/a"] == ("key.a",)
    assert graph.shown["grant.a.g"] == ("key.a",)
    # A removal waits for the key's change, but that is no news to a reviewer.
    assert graph.shown["grant.a.old"] == ()
    assert graph.preds["grant.a.old"] == ("key.a",)
    assert graph.shown["key.a.disable"] == ("key.a", "grant.a.g", "grant.a.old")


def test_alias_moves_come_before_the_old_keys_deletion() -> None:
    deletion = key("old", Action.DELETE, before={"key_id": "k-old"})
    move = alias("x", "new", Action.UPDATE, before={"target_key_id": "k-old"})
    graph = PlanGraph([deletion, key("new"), move])
    assert graph.shown["key.old"] == ("alias.alias/x",)
    assert graph.dependencies()["key.old"] == ("alias.alias/x", "key.new")


def test_key_deletions_wait_for_everything_else_through_one_barrier() -> None:
    changes = [key(f"d{i}", Action.DELETE) for i in range(50)] + [key(f"u{i}") for i in range(50)]
    graph = PlanGraph(changes)
    # 100 edges through the barrier, not 2,500 spelled out.
    assert sum(len(p) for p in graph.preds.values()) == 100
    deps = graph.dependencies()
    assert deps["key.d0"] == tuple(f"key.u{i}" for i in range(50))
    assert deps["key.u0"] == ()


def test_topological_order_is_the_reading_order_whatever_the_input_order() -> None:
    changes = [
        key("b", Action.DELETE, before={"key_id": "kb"}),
        alias("gone", "c", Action.DELETE, before={"target_key_id": "kb"}),
        disable("a"),
        grant("a", "old", Action.DELETE),
        grant("a", "g"),
        alias("a", "a"),
        key("a", Action.CREATE),
        key("c", Action.RESTORE),
    ]
    expected = [
        "key.a",
        "key.c",
        "alias.alias/a",
        "grant.a.g",
        "grant.a.old",
        "alias.alias/gone",
        "key.a.disable",
        "key.b",
    ]
    for seed in range(20):
        shuffled = list(changes)
        random.Random(seed).shuffle(shuffled)
        order = [c.address for c in PlanGraph(shuffled, declared=False).topological_order()]
        assert order == expected
        assert order == [
            c.address for c in sorted(changes, key=lambda c: (reading_rank(c), c.address))
        ]


def test_a_cycle_is_refused() -> None:
    a = key("a", depends_on=("key.b",))
    b = key("b", depends_on=("key.a",))
    assert PlanGraph([a, b]).has_cycle()
    assert not PlanGraph([a, b], declared=False).has_cycle()


def test_a_declared_dependency_on_a_key_deletion_is_a_cycle() -> None:
    # Everything else runs before key deletions; a change that claims to wait for one
    # can never run.
    assert PlanGraph([key("d", Action.DELETE), key("u", depends_on=("key.d",))]).has_cycle()


@pytest.mark.parametrize("size", [10, 1000])
def test_edges_grow_linearly_with_the_plan(size: int) -> None:
    changes: list[Change] = []
    for i in range(size):
        changes += [key(f"k{i}"), alias(f"k{i}", f"k{i}"), grant(f"k{i}", "g"), disable(f"k{i}")]
        changes.append(key(f"d{i}", Action.DELETE))
    graph = PlanGraph(changes)
    edges = sum(len(p) for p in graph.preds.values())
    # Per key: alias, grant <- key; disable <- key, grant; 4 changes -> barrier; barrier ->
    # deletion.
    assert edges == size * 9
