"""What the stacks of one run share, against the moto server: one rate limiter per account and
Region (two stacks in one account-Region share its quotas; stacks elsewhere do not) and one
``--parallelism`` budget of requests in flight; and the stacks are planned at once, each on
its own, a failing one never holding the others back."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from apply_support import ACCOUNT, kmsplan, write_manifest

from kmsplan.aws.client import AwsClients
from kmsplan.model import Placement, Role, Stack
from kmsplan.plan.types import GateOptions
from kmsplan.run import AwsSettings, ClientPool
from kmsplan.run.clients import Budget
from kmsplan.run.stacks import plan_each

pytestmark = pytest.mark.integration

OTHER = "222233334444"
ROLE = Role(arn=f"arn:aws:iam::{OTHER}:role/x")


def test_pools_of_one_run_share_a_limiter_per_account_and_region(endpoint: str) -> None:
    aws = AwsSettings(endpoint_url=endpoint, parallelism=4)
    budget = Budget(aws)
    first, second, other = (
        ClientPool(aws, budget=budget),
        ClientPool(aws, budget=budget),
        ClientPool(aws, role=ROLE, budget=budget),
    )
    homes = [p.connect("us-east-1").home for p in (first, second, other)]
    assert homes == [
        Placement(account_id=ACCOUNT, region="us-east-1"),
        Placement(account_id=ACCOUNT, region="us-east-1"),
        Placement(account_id=OTHER, region="us-east-1"),
    ]
    a, b, c = (p.clients(h) for p, h in zip((first, second, other), homes, strict=True))
    assert a.limiter is b.limiter  # one account and Region: one set of quotas
    assert c.limiter is not a.limiter  # another account: quotas of its own
    west = Placement(account_id=ACCOUNT, region="eu-west-1")
    assert first.clients(west).limiter is second.clients(west).limiter
    assert first.clients(west).limiter is not a.limiter  # another Region: its own
    assert {id(x.inflight) for x in (a, b, c, first.clients(west))} == {id(budget.inflight)}
    # A replica's Region is read with the pool's clients there: its limiter, its role.
    assert a.for_region("eu-west-1") is first.clients(west)
    assert c.for_region("eu-west-1") is other.clients(
        Placement(account_id=OTHER, region="eu-west-1")
    )
    assert c.for_region("eu-west-1").role == ROLE


def test_pools_of_separate_runs_share_nothing(endpoint: str) -> None:
    aws = AwsSettings(endpoint_url=endpoint)
    one, two = ClientPool(aws), ClientPool(aws)
    home = one.connect("us-east-1").home
    assert two.connect("us-east-1").home == home
    assert one.clients(home).limiter is not two.clients(home).limiter
    assert one.clients(home).inflight is None


def stacks(folder: Path, count: int, **top: Any) -> list[Stack]:
    from kmsplan.manifest import load_stacks

    for n in range(count):
        keys = {f"k{i}": {} for i in range(3)}
        write_manifest(folder / f"s{n}.yaml", f"s{n}", keys, region="us-east-1", **top)
    return list(load_stacks([str(folder)]))


def test_stacks_are_planned_at_once_within_the_parallelism_budget(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six stacks, --parallelism 2: never more than 2 requests on the wire (counted at the
    wire, independently of the budget's own bookkeeping), and more than one stack is read at
    a time: a stack waits for none of the others to finish."""
    created = AwsClients.create
    lock = threading.Lock()
    wire = {"now": 0, "most": 0}

    def on_send(**_: Any) -> None:
        with lock:
            wire["now"] += 1
            wire["most"] = max(wire["most"], wire["now"])

    def on_answer(**_: Any) -> None:
        with lock:
            wire["now"] -= 1

    def counting(**kwargs: Any) -> AwsClients:
        clients = created(**kwargs)
        for c in (clients.kms, clients.kms_no_retry, clients.sts, clients.tagging, clients.iam):
            c.meta.events.register("before-send", on_send)  # after the budget's slot
            c.meta.events.register_first("response-received", on_answer)
        return clients

    monkeypatch.setattr(AwsClients, "create", staticmethod(counting))
    from kmsplan.run import planning

    read_live = planning.read_live
    # No stack passes this barrier until two are reading: planned one after another, it would
    # never be passed (bounded: it breaks after its timeout, and the plan fails).
    gate = threading.Barrier(2, timeout=60)

    def first_two_together(clients: AwsClients, desired: Stack, **kw: Any) -> Any:
        if desired.name in ("s0", "s1"):
            gate.wait()
        return read_live(clients, desired, **kw)

    monkeypatch.setattr(planning, "read_live", first_two_together)
    found = stacks(tmp_path, 6)
    outcomes = plan_each(found, AwsSettings(endpoint_url=endpoint, parallelism=2), GateOptions())
    assert [o.stack.name for o in outcomes] == [f"s{n}" for n in range(6)]  # in order given
    assert [o.error for o in outcomes] == [None] * 6
    assert all(o.plan is not None and len(o.plan.changes) == 3 for o in outcomes)
    assert not gate.broken
    assert 1 <= wire["most"] <= 2


def test_a_stack_that_fails_does_not_stop_the_others(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(4):
        write_manifest(tmp_path / f"s{n}.yaml", f"s{n}", {"k": {}}, region="us-east-1")
    write_manifest(
        tmp_path / "s2.yaml", "s2", {"k": {}}, region="us-east-1", account="999999999999"
    )
    code, out, err = kmsplan(capsys, endpoint, "plan", str(tmp_path), "--parallelism", "2")
    assert code == 1, out + err
    assert out.count("Plan: 1 to add") == 3
    assert "failed: error: the manifests declare account 999999999999" in out
    assert out.splitlines()[-1] == (
        "Run: 4 stacks: 3 with changes, 0 blocked, 1 failed, 0 without changes."
    )


def test_a_role_is_assumed_once_per_stack_whatever_clients_it_needs(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second stack of an account-Region is served with the shared limiter, and a
    replica's Region with its own clients: both are made from the session that assumed the
    role, not by assuming it again."""
    from kmsplan.aws import client as aws_client

    assumed: list[str] = []
    assume = aws_client.assume

    def counted(session: Any, role: Role, **kw: Any) -> Any:
        assumed.append(role.arn)
        return assume(session, role, **kw)

    monkeypatch.setattr(aws_client, "assume", counted)
    aws = AwsSettings(endpoint_url=endpoint)
    budget = Budget(aws)
    first, second = (
        ClientPool(aws, role=ROLE, budget=budget),
        ClientPool(aws, role=ROLE, budget=budget),
    )
    home = first.connect("us-east-1").home
    assert second.connect("us-east-1").home == home
    assert first.clients(home).limiter is second.clients(home).limiter
    west = first.clients(home).for_region("eu-west-1")
    assert west.kms.list_keys()["Keys"] == []  # the role's account, in eu-west-1
    assert assumed == [ROLE.arn, ROLE.arn]  # once per stack


def test_assuming_a_role_counts_against_the_budget_too(endpoint: str) -> None:
    from kmsplan.aws.inflight import InFlight

    class Counting(InFlight):
        entered = 0

        def enter(self) -> None:
            Counting.entered += 1
            super().enter()

    aws = AwsSettings(endpoint_url=endpoint)
    budget = Budget(aws)
    budget.inflight = Counting(2)
    ClientPool(aws, role=ROLE, budget=budget).connect("us-east-1")
    # Who am I and AssumeRole (in assume), then who the role is (the account guard's).
    assert Counting.entered == 3
    assert budget.inflight.most == 1


def test_stacks_of_one_run_ask_iam_once_about_a_role_they_all_name(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apply_support import create_role, hooked_clients

    from kmsplan.manifest import load_stacks

    app = create_role(endpoint, "app")
    gone = f"arn:aws:iam::{ACCOUNT}:role/gone"
    for n in range(3):
        grants = [
            {"name": "app", "grantee": app, "operations": ["Decrypt"]},
            {"name": "gone", "grantee": gone, "operations": ["Decrypt"]},
        ]
        keys = {"k": {"grants": grants}}
        write_manifest(tmp_path / f"s{n}.yaml", f"s{n}", keys, region="us-east-1")
    asked: list[str] = []
    lock = threading.Lock()

    def install(iam: Any) -> None:
        def before_send(event_name: str, request: Any, **_: Any) -> None:
            if event_name.endswith(".GetRole"):
                with lock:
                    asked.append(str(request.body))

        iam.meta.events.register("before-send", before_send)

    stacks = list(load_stacks([str(tmp_path)]))
    with hooked_clients(monkeypatch, install, client_names=("iam",)):
        outcomes = plan_each(stacks, AwsSettings(endpoint_url=endpoint), GateOptions())
    assert len(asked) == 2  # app and gone, once each, for the three stacks
    for outcome in outcomes:  # and every stack's plan knows what IAM said
        assert outcome.plan is not None, outcome.error
        assert any("gone" in str(c.blocked) for c in outcome.plan.changes), outcome.plan
