"""Clients per placement: created on first use, one set (and one rate limiter) per account
and Region; nothing is applied where the run has no clients for. No AWS call is made here:
creating boto3 clients does not talk to AWS."""

from __future__ import annotations

import pytest
from builders import ACCOUNT

from kmsplan.aws.client import AwsClients
from kmsplan.errors import KmsplanError
from kmsplan.model import Placement
from kmsplan.plan.types import Action, ApiCall, Change, Plan, Resource
from kmsplan.run import ClientPool, Identity
from kmsplan.run.session import Run

HOME = Placement(account_id=ACCOUNT, region="eu-west-1")
# Nothing listens here; any request would fail loudly.
NOWHERE = "http://127.0.0.1:9"


def pool() -> ClientPool:
    home = AwsClients.create(profile=None, region=HOME.region, endpoint_url=NOWHERE)
    return ClientPool.adopt(home, Identity(home=HOME, caller_arn="arn:x"))


def test_each_placement_gets_its_own_clients_and_rate_limiter_once() -> None:
    clients = pool()
    home = clients.clients(HOME)
    elsewhere = Placement(account_id=ACCOUNT, region="us-west-2")
    other = clients.clients(elsewhere)
    assert (home.region, other.region) == ("eu-west-1", "us-west-2")
    assert other.limiter is not home.limiter
    assert clients.clients(elsewhere) is other
    assert clients.writer(elsewhere) is other.kms
    assert other.endpoint_url == NOWHERE


def test_a_placement_in_another_account_has_no_clients() -> None:
    with pytest.raises(KmsplanError) as exc:
        pool().clients(Placement(account_id="999999999999", region="eu-west-1"))
    assert str(exc.value) == (
        f"no credentials for account 999999999999: the run's credentials are for account {ACCOUNT}"
    )


def test_apply_refuses_a_plan_with_changes_for_another_account_before_any_call() -> None:
    clients = pool()
    elsewhere = Placement(account_id="999999999999", region="us-west-2")
    change = Change(
        address="key.orders",
        resource=Resource.KEY,
        action=Action.UPDATE,
        key="orders",
        calls=(ApiCall(operation="EnableKey", params={"KeyId": "k"}),),
        placement=elsewhere,
    )
    plan = Plan(stack="shop", account_id=ACCOUNT, region=HOME.region, changes=(change,))
    run = Run(clients, Identity(home=HOME, caller_arn="arn:x"))
    with pytest.raises(KmsplanError) as exc:
        run.apply(plan, on_event=lambda event: None, audit=None)
    assert str(exc.value) == (
        "the plan has changes for 999999999999/us-west-2; this kmsplan applies only in the "
        f"stack's own account ({ACCOUNT}). Nothing was changed"
    )


def test_apply_sends_a_replica_regions_changes_through_that_regions_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clients = pool()
    replica = Placement(account_id=ACCOUNT, region="us-west-2")
    change = Change(
        address="replica.orders.us-west-2",
        resource=Resource.REPLICA,
        action=Action.UPDATE,
        key="orders",
        calls=(ApiCall(operation="EnableKey", params={"KeyId": "k"}),),
        placement=replica,
    )
    plan = Plan(stack="shop", account_id=ACCOUNT, region=HOME.region, changes=(change,))
    sent: list[tuple[str, str]] = []
    writer = clients.writer(replica)

    def enable_key(**params: str) -> dict[str, str]:
        sent.append((replica.region, params["KeyId"]))
        return {}

    monkeypatch.setattr(writer, "enable_key", enable_key)
    run = Run(clients, Identity(home=HOME, caller_arn="arn:x"))

    result = run.apply(plan, on_event=lambda event: None, audit=None)

    assert result.ok
    assert sent == [("us-west-2", "k")]
