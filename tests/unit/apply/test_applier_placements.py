"""The applier writes each change through the writer of the change's account and Region, and
knows KMS only through that port: a fake writer is all these tests need."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest
from apply_plans import ACCOUNT, REGION, call, change, plan

from kmsplan.apply import NO_WAIT, ChangeStatus, apply_plan
from kmsplan.aws.writer import Answer, KmsCallError, Writer
from kmsplan.errors import KmsplanError
from kmsplan.model import Placement
from kmsplan.plan.types import Action, Change, Resource

HOME = Placement(account_id=ACCOUNT, region=REGION)
REPLICA = Placement(account_id=ACCOUNT, region="eu-west-1")


class FakeWriter:
    """Records the calls it is given; answers every one, or refuses the listed operations."""

    def __init__(self, *, refuse: Mapping[str, str] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._refuse = dict(refuse or {})

    def call(self, operation: str, params: Mapping[str, Any]) -> Answer:
        self.calls.append((operation, dict(params)))
        if operation in self._refuse:
            raise KmsCallError(operation, self._refuse[operation], "refused", "req-9")
        return Answer(body={}, request_id="req-1")


def tag_change(key: str, placement: Placement | None = None) -> Change:
    tagged = change(
        f"key.{key}",
        Resource.KEY,
        Action.UPDATE,
        key,
        call("TagResource", KeyId=f"{key}-id", Tags=[{"TagKey": "team", "TagValue": "a"}]),
    )
    return dataclasses.replace(tagged, placement=placement)


def apply(the_plan: Any, writers: Mapping[Placement, Writer]) -> Any:
    def writer(placement: Placement) -> Writer:
        if placement not in writers:
            raise KmsplanError(f"no writer for {placement}")
        return writers[placement]

    return apply_plan(
        the_plan,
        writer,
        parallelism=2,
        limiter=None,
        on_event=lambda _e: None,
        audit=None,
        retry=NO_WAIT,
    )


def test_each_change_is_written_through_its_placements_writer() -> None:
    home, replica = FakeWriter(), FakeWriter()
    result = apply(
        plan(tag_change("orders"), tag_change("orders-replica", REPLICA)),
        {HOME: home, REPLICA: replica},
    )
    assert result.ok
    assert [(op, p["KeyId"]) for op, p in home.calls] == [("TagResource", "orders-id")]
    assert [(op, p["KeyId"]) for op, p in replica.calls] == [("TagResource", "orders-replica-id")]


def test_a_placement_without_a_writer_stops_the_apply_before_any_call() -> None:
    home = FakeWriter()
    with pytest.raises(KmsplanError, match=r"^no writer for 123456789012/eu-west-1$"):
        apply(plan(tag_change("orders"), tag_change("elsewhere", REPLICA)), {HOME: home})
    assert home.calls == []


def test_an_error_answer_from_the_writer_fails_the_change_with_its_code() -> None:
    result = apply(plan(tag_change("orders")), {HOME: FakeWriter(refuse={"TagResource": "X"})})
    outcome = result.outcome("key.orders")
    assert outcome is not None and outcome.status is ChangeStatus.FAILED
    assert (outcome.failed_operation, outcome.error_code, outcome.error_message) == (
        "TagResource",
        "X",
        "refused",
    )
