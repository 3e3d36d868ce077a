"""The applier and replicas: a replica's changes go to its Region; ReplicateKey goes to the
primary's, is never made twice (a replica whose answer was lost is found by the key id it
shares with its primary), and is followed by a wait while the replica is ``Creating``.

The emulator makes a replica Enabled at once, so the wait is played by botocore's Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from apply_plans import ACCOUNT, REGION, call, identity_tags, plan
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto import mock_aws

from kmsplan import local_kms_patches
from kmsplan.apply import ApplyEvent, ApplyResult, RetryPolicy, apply_plan
from kmsplan.aws.writer import KmsWriter, Writer
from kmsplan.model import Placement
from kmsplan.plan.types import Action, Change, Plan, Resource

KEY_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"
EU = "eu-west-1"


class RecordedSleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def replica_change(key_id: str = KEY_ID, *extra: Any) -> Change:
    return Change(
        address=f"replica.orders.{EU}",
        resource=Resource.REPLICA,
        action=Action.CREATE,
        key="orders",
        calls=(
            call(
                "ReplicateKey",
                KeyId=key_id,
                ReplicaRegion=EU,
                Description="orders",
                Tags=identity_tags("orders"),
            ),
            *extra,
        ),
        placement=Placement(account_id=ACCOUNT, region=EU),
    )


def writers(home: Any, regional: dict[str, Any]) -> Any:
    """A writer per Region: `home`'s for the plan's Region, `regional[region]`'s elsewhere."""
    by_region = {REGION: KmsWriter(home), **{r: KmsWriter(c) for r, c in regional.items()}}

    def writer(placement: Placement) -> Writer:
        return by_region[placement.region]

    return writer


def run(
    the_plan: Plan, home: Any, regional: dict[str, Any], sleeps: RecordedSleeps
) -> tuple[ApplyResult, list[ApplyEvent]]:
    events: list[ApplyEvent] = []
    result = apply_plan(
        the_plan,
        writers(home, regional),
        parallelism=1,
        limiter=None,
        on_event=events.append,
        audit=None,
        retry=RetryPolicy(sleep=sleeps, jitter=lambda: 1.0),
    )
    return result, events


def replica_metadata(state: str) -> dict[str, Any]:
    return {
        "KeyMetadata": {
            "KeyId": KEY_ID,
            "KeyState": state,
            "MultiRegion": True,
            "MultiRegionConfiguration": {
                "MultiRegionKeyType": "REPLICA",
                "PrimaryKey": {
                    "Arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}",
                    "Region": REGION,
                },
                "ReplicaKeys": [{"Arn": f"arn:aws:kms:{EU}:{ACCOUNT}:key/{KEY_ID}", "Region": EU}],
            },
        }
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber, Any, Stubber]]:
    home = boto3.client("kms", region_name=REGION)
    eu = boto3.client("kms", region_name=EU)
    with Stubber(home) as home_stub, Stubber(eu) as eu_stub:
        yield home, home_stub, eu, eu_stub
        home_stub.assert_no_pending_responses()
        eu_stub.assert_no_pending_responses()


def test_replicate_key_goes_to_the_primary_and_waits_while_the_replica_is_creating(
    stubbed: tuple[Any, Stubber, Any, Stubber],
) -> None:
    home, home_stub, eu, eu_stub = stubbed
    eu_stub.add_client_error("describe_key", "NotFoundException", "no such key")
    home_stub.add_response(
        "replicate_key", {"ReplicaKeyMetadata": replica_metadata("Creating")["KeyMetadata"]}
    )
    eu_stub.add_response("describe_key", replica_metadata("Creating"))
    eu_stub.add_response("describe_key", replica_metadata("Creating"))
    eu_stub.add_response("describe_key", replica_metadata("Enabled"))
    # The replica's next call goes to its own Region.
    eu_stub.add_response("disable_key", {}, {"KeyId": KEY_ID})
    sleeps = RecordedSleeps()

    result, events = run(
        plan(replica_change(KEY_ID, call("DisableKey", KeyId=KEY_ID))), home, {EU: eu}, sleeps
    )

    assert result.ok, result
    assert len(sleeps.delays) == 2
    assert [e.message for e in events if e.message] == [
        f"replica of {KEY_ID} is Creating; waiting {sleeps.delays[0]:.1f}s",
        f"replica of {KEY_ID} is Creating; waiting {sleeps.delays[1]:.1f}s",
    ]


def test_a_replica_that_exists_already_is_not_replicated_again(
    stubbed: tuple[Any, Stubber, Any, Stubber],
) -> None:
    home, _home_stub, eu, eu_stub = stubbed
    eu_stub.add_response("describe_key", replica_metadata("Enabled"))

    result, _ = run(plan(replica_change()), home, {EU: eu}, RecordedSleeps())

    assert result.ok  # and the home stub got no ReplicateKey (no response was queued)


def test_a_replica_that_stays_creating_fails_the_change_saying_so(
    stubbed: tuple[Any, Stubber, Any, Stubber],
) -> None:
    home, home_stub, eu, eu_stub = stubbed
    eu_stub.add_client_error("describe_key", "NotFoundException", "no such key")
    home_stub.add_response(
        "replicate_key", {"ReplicaKeyMetadata": replica_metadata("Creating")["KeyMetadata"]}
    )
    sleeps = RecordedSleeps()
    retry = RetryPolicy(max_total_seconds=3.0, sleep=sleeps, jitter=lambda: 1.0)
    delays = len(list(retry.delays()))
    for _ in range(delays + 1):
        eu_stub.add_response("describe_key", replica_metadata("Creating"))

    events: list[ApplyEvent] = []
    result = apply_plan(
        plan(replica_change()),
        writers(home, {EU: eu}),
        parallelism=1,
        limiter=None,
        on_event=events.append,
        audit=None,
        retry=retry,
    )

    (outcome,) = result.outcomes
    assert not result.ok
    assert outcome.error_code == "StillCreating"
    assert outcome.error_message == (
        f"the replica of {KEY_ID} is still Creating; run apply again later"
    )


def _internal_error() -> AWSResponse:
    body = b'{"__type": "KMSInternalException", "message": "internal"}'
    return AWSResponse(url="https://kms", status_code=500, headers={}, raw=_Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def test_a_replica_whose_replicate_key_answer_was_lost_is_found_not_made_twice() -> None:
    local_kms_patches.install()
    with mock_aws():
        home = boto3.client("kms", region_name=REGION)
        eu = boto3.client("kms", region_name=EU)
        key_id = home.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
        lost = [1]

        def lose(event_name: str, **_: Any) -> AWSResponse | None:
            # The call reaches the emulator and takes effect; the answer is lost once.
            if event_name.endswith("ReplicateKey") and lost[0]:
                lost[0] -= 1
                return _internal_error()
            return None

        home.meta.events.register_first("before-send.kms", lose)
        result, events = run(plan(replica_change(key_id)), home, {EU: eu}, RecordedSleeps())

        assert result.ok, result
        config = home.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
        assert [r["Region"] for r in config["ReplicaKeys"]] == [EU]
        assert any("looking for the replica" in (e.message or "") for e in events)
