"""Retries the applier owns: KMS eventual consistency, throttling, and CreateKey / CreateGrant
answers lost in transit. KMS behaviours moto lacks (invalid-principal propagation, the lockout
refusal, a 200 that schedules nothing) are played by botocore's Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from apply_plans import (
    ALLOW_DELETE,
    call,
    change,
    create_key,
    grant_create,
    identity_tags,
    key_deletion,
    plan,
    writers,
)
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from helpers import http_answer, scripted_kms_client
from moto import mock_aws

from kmsplan.apply import (
    ApplyEvent,
    ApplyResult,
    ChangeStatus,
    EventKind,
    RetryPolicy,
    apply_plan,
)
from kmsplan.plan.types import Action, Plan, Resource, ref

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."
LOCKOUT = "The new key policy will not allow you to update the key policy in the future."


class RecordedSleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def policy(sleeps: RecordedSleeps, total: float = 120.0) -> RetryPolicy:
    return RetryPolicy(max_total_seconds=total, sleep=sleeps, jitter=lambda: 1.0)


def run(the_plan: Plan, kms: Any, retry: RetryPolicy) -> tuple[ApplyResult, list[ApplyEvent]]:
    events: list[ApplyEvent] = []
    result = apply_plan(
        the_plan,
        writers(kms),
        parallelism=1,
        limiter=None,
        on_event=events.append,
        audit=None,
        retry=retry,
    )
    return result, events


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    kms = boto3.client("kms", region_name="us-east-1")
    with Stubber(kms) as stubber:
        yield kms, stubber
        stubber.assert_no_pending_responses()


def put_policy_change() -> Any:
    return change(
        "key.orders",
        Resource.KEY,
        Action.UPDATE,
        "orders",
        call("PutKeyPolicy", KeyId=KEY_ID, Policy='{"Version": "2012-10-17"}'),
    )


def test_a_principal_not_yet_visible_to_kms_is_retried_until_it_is(
    stubbed: tuple[Any, Stubber],
) -> None:
    kms, stubber = stubbed
    for _ in range(2):
        stubber.add_client_error(
            "put_key_policy", "MalformedPolicyDocumentException", INVALID_PRINCIPALS
        )
    stubber.add_response("put_key_policy", {})
    sleeps = RecordedSleeps()
    result, events = run(plan(put_policy_change()), kms, policy(sleeps))
    assert result.ok
    assert sleeps.delays == [1.0, 2.0]
    retries = [e.message for e in events if e.kind is EventKind.RETRYING]
    assert retries == [
        f"MalformedPolicyDocumentException: {INVALID_PRINCIPALS}; retrying in 1.0s",
        f"MalformedPolicyDocumentException: {INVALID_PRINCIPALS}; retrying in 2.0s",
    ]


def test_invalid_principal_retries_stop_when_the_time_budget_is_spent(
    stubbed: tuple[Any, Stubber],
) -> None:
    kms, stubber = stubbed
    # Budget 10 s with delays 1, 2, 4 (=7; the next, 8, would exceed it): 4 attempts.
    for _ in range(4):
        stubber.add_client_error(
            "put_key_policy", "MalformedPolicyDocumentException", INVALID_PRINCIPALS
        )
    sleeps = RecordedSleeps()
    result, _ = run(plan(put_policy_change()), kms, policy(sleeps, total=10.0))
    outcome = result.outcome("key.orders")
    assert outcome is not None and outcome.status is ChangeStatus.FAILED
    assert (outcome.error_code, outcome.error_message) == (
        "MalformedPolicyDocumentException",
        INVALID_PRINCIPALS,
    )
    assert sleeps.delays == [1.0, 2.0, 4.0]


def test_the_lockout_refusal_is_never_retried(stubbed: tuple[Any, Stubber]) -> None:
    kms, stubber = stubbed
    stubber.add_client_error("put_key_policy", "MalformedPolicyDocumentException", LOCKOUT)
    sleeps = RecordedSleeps()
    result, _ = run(plan(put_policy_change()), kms, policy(sleeps))
    outcome = result.outcome("key.orders")
    assert outcome is not None and outcome.error_message == LOCKOUT
    assert sleeps.delays == []


def test_not_found_right_after_create_in_the_same_run_is_retried(
    stubbed: tuple[Any, Stubber],
) -> None:
    kms, stubber = stubbed
    stubber.add_response("create_key", {"KeyMetadata": {"KeyId": KEY_ID}})
    stubber.add_client_error("enable_key_rotation", "NotFoundException", f"{KEY_ID} not found")
    stubber.add_response("enable_key_rotation", {}, {"KeyId": KEY_ID})
    sleeps = RecordedSleeps()
    the_plan = plan(create_key("orders", call("EnableKeyRotation", KeyId=ref("key.orders"))))
    result, _ = run(the_plan, kms, policy(sleeps))
    assert result.ok
    assert sleeps.delays == [1.0]


def test_not_found_on_a_key_this_run_did_not_create_is_not_retried(
    stubbed: tuple[Any, Stubber],
) -> None:
    kms, stubber = stubbed
    stubber.add_client_error("enable_key_rotation", "NotFoundException", f"{KEY_ID} not found")
    sleeps = RecordedSleeps()
    update = change(
        "key.orders", Resource.KEY, Action.UPDATE, "orders", call("EnableKeyRotation", KeyId=KEY_ID)
    )
    result, _ = run(plan(update), kms, policy(sleeps))
    assert not result.ok
    assert sleeps.delays == []


def test_a_deletion_kms_accepted_but_did_not_schedule_is_reported_as_failed(
    stubbed: tuple[Any, Stubber],
) -> None:
    kms, stubber = stubbed
    tags = identity_tags("old", protected=False)
    enabled = {"KeyMetadata": {"KeyId": KEY_ID, "KeyState": "Enabled"}}
    stubber.add_response("list_resource_tags", {"Tags": tags})
    stubber.add_response("describe_key", enabled)
    stubber.add_response("schedule_key_deletion", {"KeyId": KEY_ID})
    for _ in range(5):
        stubber.add_response("describe_key", enabled)
    result, _ = run(
        plan(key_deletion("old", KEY_ID), gate=ALLOW_DELETE), kms, policy(RecordedSleeps())
    )
    outcome = result.outcome("key.old")
    assert outcome is not None and outcome.status is ChangeStatus.FAILED
    assert (outcome.error_code, outcome.error_message) == (
        "NotScheduled",
        f"KMS accepted the call but key {KEY_ID} is Enabled, not PendingDeletion",
    )


def test_scheduling_deletion_answered_already_pending_is_success(
    stubbed: tuple[Any, Stubber],
) -> None:
    kms, stubber = stubbed
    stubber.add_response("list_resource_tags", {"Tags": identity_tags("old", protected=False)})
    stubber.add_response("describe_key", {"KeyMetadata": {"KeyId": KEY_ID, "KeyState": "Enabled"}})
    # Real KMS answers this when a lost-answer retry reaches a key already scheduled.
    stubber.add_client_error(
        "schedule_key_deletion",
        "KMSInvalidStateException",
        f"arn:aws:kms:us-east-1:123456789012:key/{KEY_ID} is pending deletion.",
    )
    stubber.add_response(
        "describe_key", {"KeyMetadata": {"KeyId": KEY_ID, "KeyState": "PendingDeletion"}}
    )
    result, _ = run(
        plan(key_deletion("old", KEY_ID), gate=ALLOW_DELETE), kms, policy(RecordedSleeps())
    )
    assert result.ok


# ---- throttling: slower, never failed (until the time budget) ------------------------------


THROTTLED = (400, b'{"__type": "ThrottlingException", "message": "Rate exceeded"}')
INTERNAL = (500, b'{"__type": "KMSInternalException", "message": "internal"}')
CREATED = (200, b'{"KeyMetadata": {"KeyId": "%s"}}' % KEY_ID.encode())
THROTTLED_LINE = (
    "CreateKey throttled by KMS (ThrottlingException): other callers share the account's"
    " quota; slowing down and retrying"
)


def test_a_throttled_create_key_is_made_again_and_reported_as_throttled_never_ambiguous() -> None:
    # A throttled request was never executed: it is retried as it is, no lookup, no duplicate.
    sent: list[str] = []
    kms = scripted_kms_client([THROTTLED, THROTTLED, CREATED], sent)
    result, events = run(plan(create_key("orders")), kms, policy(RecordedSleeps()))
    assert result.ok and result.created_keys == {"key.orders": KEY_ID}
    assert sent == ["CreateKey", "CreateKey", "CreateKey"]
    retries = [e.message for e in events if e.kind is EventKind.RETRYING]
    assert retries == [THROTTLED_LINE, THROTTLED_LINE]


def test_throttling_is_retried_past_any_attempt_count_within_the_time_budget() -> None:
    # botocore's standard mode would give up after its 5 attempts; the applier does not.
    sent: list[str] = []
    kms = scripted_kms_client([THROTTLED] * 12 + [CREATED], sent)
    result, events = run(plan(create_key("orders")), kms, policy(RecordedSleeps()))
    assert result.ok
    assert sent == ["CreateKey"] * 13
    assert sum(e.kind is EventKind.RETRYING for e in events) == 12


class StepClock:
    """A clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_throttling_gives_up_only_when_the_time_budget_is_spent() -> None:
    sent: list[str] = []
    kms = scripted_kms_client([THROTTLED] * 50, sent)
    events: list[ApplyEvent] = []
    # The clock moves 1 s per reading: budget 10 s, and each attempt reads it twice.
    result = apply_plan(
        plan(create_key("orders"), grant_create("orders", "lambda")),
        writers(kms),
        parallelism=1,
        limiter=None,
        on_event=events.append,
        audit=None,
        retry=policy(RecordedSleeps()),
        timeout=10.0,
        clock=StepClock(1.0),
    )
    key = result.outcome("key.orders")
    assert key is not None and key.status is ChangeStatus.FAILED
    assert (key.failed_operation, key.error_code, key.error_message) == (
        "CreateKey",
        "ThrottlingException",
        "Rate exceeded (still throttled when the apply's time budget of 10 s (--timeout) ran out)",
    )
    assert len(sent) == 5
    grant = result.outcome("grant.orders.lambda")
    assert grant is not None and grant.status is ChangeStatus.SKIPPED


def test_no_call_is_started_once_the_time_budget_is_spent(
    stubbed: tuple[Any, Stubber],
) -> None:
    kms, _ = stubbed  # the Stubber has no answers: any call would fail the test
    result = apply_plan(
        plan(put_policy_change()),
        writers(kms),
        parallelism=1,
        limiter=None,
        on_event=lambda _e: None,
        audit=None,
        timeout=5.0,
        clock=StepClock(10.0),
    )
    outcome = result.outcome("key.orders")
    assert outcome is not None
    assert (outcome.error_code, outcome.error_message, outcome.calls_not_done) == (
        "Timeout",
        "the apply's time budget of 5 s (--timeout) is spent; not called",
        ("PutKeyPolicy",),
    )


# ---- lost answers ----------------------------------------------------------------------------


def test_a_lost_create_key_answer_with_no_key_behind_it_creates_the_key_once() -> None:
    sent: list[str] = []
    empty_list = (200, b'{"Keys": [], "Truncated": false}')
    kms = scripted_kms_client([INTERNAL, empty_list, empty_list, empty_list, CREATED], sent)
    sleeps = RecordedSleeps()
    result, events = run(plan(create_key("orders")), kms, policy(sleeps))
    assert result.ok and result.created_keys == {"key.orders": KEY_ID}
    assert sent == ["CreateKey", "ListKeys", "ListKeys", "ListKeys", "CreateKey"]
    assert events[-2].message == (
        "CreateKey: outcome unknown (HTTP 500 KMSInternalException); no such key exists,"
        " creating it again"
    )


@pytest.fixture
def moto_kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms", region_name="us-east-1")


def lose_answers(kms: Any, operation: str, count: int) -> None:
    """The call reaches KMS and takes effect, but the client gets HTTP 500 (`count` times)."""
    remaining = [count]

    def lose(event_name: str, **_: Any) -> AWSResponse | None:
        if event_name.endswith(operation) and remaining[0] > 0:
            remaining[0] -= 1
            return http_answer(*INTERNAL)
        return None

    # Moto's own before-send handler still runs (the call takes effect); ours answers first.
    kms.meta.events.register_first("before-send.kms", lose)


def test_a_created_key_whose_answer_was_lost_is_found_and_adopted_not_duplicated(
    moto_kms: Any,
) -> None:
    lose_answers(moto_kms, "CreateKey", 1)
    result, events = run(plan(create_key("orders")), moto_kms, policy(RecordedSleeps()))
    keys = moto_kms.list_keys()["Keys"]
    assert len(keys) == 1
    assert result.ok and result.created_keys == {"key.orders": keys[0]["KeyId"]}
    assert events[-2].message == f"CreateKey answer was lost; adopted key {keys[0]['KeyId']}"


def test_a_created_grant_whose_answer_was_lost_is_not_duplicated(moto_kms: Any) -> None:
    key_id = moto_kms.create_key(Tags=identity_tags("orders"))["KeyMetadata"]["KeyId"]
    lose_answers(moto_kms, "CreateGrant", 1)
    result, _ = run(
        plan(grant_create("orders", "lambda", target=key_id)), moto_kms, policy(RecordedSleeps())
    )
    assert result.ok
    assert len(moto_kms.list_grants(KeyId=key_id)["Grants"]) == 1
