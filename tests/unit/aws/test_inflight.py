"""The run's budget of requests in flight (`InFlight`), and how every client of a run is
wired to it: a slot from after the rate limiter's wait until the answer."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from kmsplan.aws.client import AwsClients
from kmsplan.aws.inflight import InFlight

NOWHERE = "http://127.0.0.1:9"


def free_slots(budget: InFlight) -> int:
    """How many slots a new thread could take right now (taken back at once)."""
    taken = 0
    while budget._slots.acquire(blocking=False):
        taken += 1
    for _ in range(taken):
        budget._slots.release()
    return taken


def test_each_request_holds_one_slot_until_its_answer() -> None:
    budget = InFlight(2)
    budget.enter()
    assert free_slots(budget) == 1
    budget.enter()  # the same thread's retry, or a path that announced nothing: no second slot
    assert free_slots(budget) == 1
    budget.leave()
    budget.leave()  # answered twice (response-received, then after-call-error): given back once
    assert free_slots(budget) == 2
    assert budget.most == 1


def test_threads_beyond_the_budget_wait_for_a_slot() -> None:
    budget = InFlight(2)
    inside = threading.Barrier(3)
    release = threading.Event()
    done: list[int] = []

    def request(n: int) -> None:
        budget.enter()
        done.append(n)
        if len(done) <= 2:
            inside.wait()  # the first two are in flight together
        release.wait()
        budget.leave()

    threads = [threading.Thread(target=request, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    inside.wait()
    assert len(done) == 2 and free_slots(budget) == 0  # the third waits for a slot
    release.set()
    for t in threads:
        t.join()
    assert sorted(done) == [0, 1, 2]
    assert (budget.most, free_slots(budget)) == (2, 2)


def test_a_budget_allows_at_least_one_request() -> None:
    with pytest.raises(ValueError, match="at least 1 request, got 0"):
        InFlight(0)


def test_every_client_of_a_run_holds_a_slot_while_a_request_is_on_the_wire() -> None:
    budget = InFlight(3)
    clients = AwsClients.create(
        profile=None, region="eu-west-1", endpoint_url=NOWHERE, inflight=budget
    )
    assert clients.inflight is budget
    assert clients.for_region("us-west-2").inflight is budget
    seen: list[int] = []

    def on_the_wire(**_: Any) -> None:
        seen.append(free_slots(budget))

    # Registered after kmsplan's own before-send hook, so it runs once the slot is taken.
    clients.kms_no_retry.meta.events.register("before-send", on_the_wire)
    with pytest.raises(EndpointConnectionError):  # nothing listens at NOWHERE
        clients.kms_no_retry.list_keys()
    assert seen == [2]  # one of the 3 slots was held while the request was on the wire
    assert free_slots(budget) == 3  # and the failed request gave it back


def test_a_stubbed_call_takes_no_slot_and_gives_none_back() -> None:
    budget = InFlight(1)
    clients = AwsClients.create(
        profile=None, region="eu-west-1", endpoint_url=NOWHERE, inflight=budget
    )
    with Stubber(clients.kms) as stub:
        stub.add_response("list_keys", {"Keys": []})
        assert clients.kms.list_keys()["Keys"] == []
    assert free_slots(budget) == 1
