"""The plan's vocabulary: actions and their words, addresses, reasons."""

from __future__ import annotations

import copy
import pickle

import pytest

from kmsplan.plan.actions import ACTIONS, BLOCKED_SYMBOL, legend, words_for
from kmsplan.plan.address import Address, Resource, Step
from kmsplan.plan.reasons import WORDS, Reason, Why, because
from kmsplan.plan.types import Action, Change


def test_every_action_has_one_row_with_distinct_symbols_and_counters() -> None:
    assert set(ACTIONS) == set(Action)
    symbols = [info.symbol for info in ACTIONS.values()]
    assert len(set(symbols)) == len(symbols) and BLOCKED_SYMBOL not in symbols
    counters = [info.counter for info in ACTIONS.values()]
    assert len(set(counters)) == len(counters) and "blocked" not in counters
    assert list(legend()) == [*symbols, BLOCKED_SYMBOL]


@pytest.mark.parametrize(
    ("action", "address", "headline", "word"),
    [
        (Action.DELETE, Address.of_key("k"), "will be scheduled for deletion", "schedule deletion"),
        (Action.DELETE, Address.of_grant("k", "g"), "will be revoked", "revoke"),
        (Action.DELETE, Address.of_alias("alias/a"), "will be deleted", "delete"),
        (Action.UPDATE, Address.of_key("k", Step.DISABLE), "will be disabled", "disable"),
        (Action.UPDATE, Address.of_key("k"), "will be updated in place", "update"),
        (Action.RESTORE, Address.of_key("k"), "will be restored", "restore"),
    ],
)
def test_words_depend_on_the_resource_and_the_step(
    action: Action, address: Address, headline: str, word: str
) -> None:
    said = words_for(action, address)
    assert (said.headline, said.word) == (headline, word)


@pytest.mark.parametrize(
    ("text", "resource", "name", "key", "step"),
    [
        ("key.orders", Resource.KEY, "orders", "orders", None),
        ("key.orders.disable", Resource.KEY, "orders", "orders", Step.DISABLE),
        ("alias.alias/a/b", Resource.ALIAS, "alias/a/b", None, None),
        ("grant.orders.lambda", Resource.GRANT, "lambda", "orders", None),
    ],
)
def test_addresses_parse_into_their_parts_and_read_as_before(
    text: str, resource: Resource, name: str, key: str | None, step: Step | None
) -> None:
    address = Address.parse(text)
    assert address == text and str(address) == text
    assert (address.resource, address.name, address.key, address.step) == (
        resource,
        name,
        key,
        step,
    )
    assert Address.parse(address) is address
    assert copy.deepcopy(address).step is step
    assert pickle.loads(pickle.dumps(address)).resource is resource


def test_a_step_knows_its_owner() -> None:
    assert Address.of_key("k", Step.DISABLE).owner == "key.k"
    assert Address.of_key("k").owner == "key.k"


@pytest.mark.parametrize(
    "text",
    ["", "key", "key.", "key.a.b", "key.a.disable.x", "alias.x", "grant.a", "grant.a.", "other.a"],
)
def test_malformed_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a change address"):
        Address.parse(text)


def test_a_change_given_strings_holds_typed_address_and_reason() -> None:
    change = Change(
        address="key.k.disable",
        resource=Resource.KEY,
        action=Action.UPDATE,
        key="k",
        reason="declared on key.k",
    )
    assert change.is_trailing_disable
    assert change.reason.codes == (Why.DECLARED_ON,)


def _example(why: Why) -> Reason:
    names = [n.split("}")[0] for n in WORDS[why].split("{")[1:]]
    return Reason((because(why, **{n: f"<{n}>" for n in names}),))


@pytest.mark.parametrize("why", [w for w in Why if w is not Why.NOTE])
def test_every_reason_reads_back_from_its_words(why: Why) -> None:
    reason = _example(why)
    assert Reason.parse(str(reason)).parts == reason.parts


def test_reasons_of_several_parts_read_back_even_with_semicolons_in_their_words() -> None:
    reason = Reason(
        (
            because(Why.IMMUTABLE, attributes="spec, usage"),
            because(Why.KEY_PENDING_DELETION),
            because(Why.TEMPORARY_ENABLE),  # its words hold "; "
            because(Why.POLICY_LABELS_ONLY),
        )
    )
    assert str(reason).count("; ") == 5
    assert Reason.parse(str(reason)).codes == reason.codes
    assert pickle.loads(pickle.dumps(reason)).parts == reason.parts


def test_text_no_template_matches_stays_whole() -> None:
    reason = Reason.parse("edited by hand; twice")
    assert reason == "edited by hand; twice"
    assert reason.codes == (Why.NOTE,)
    assert not Reason.parse("")
