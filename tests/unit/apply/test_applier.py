"""The applier against in-process moto: what it calls, what it reports, what it refuses."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from apply_plans import (
    ACCOUNT,
    ALLOW_DELETE,
    GRANTEE,
    STACK,
    alias_create,
    call,
    change,
    create_key,
    grant_create,
    identity_tags,
    key_deletion,
    plan,
    writers,
)
from moto import mock_aws

from kmsplan.apply import NO_WAIT, ApplyEvent, ApplyResult, ChangeStatus, EventKind, apply_plan
from kmsplan.audit import AuditLog
from kmsplan.model import TAG_PROTECTION
from kmsplan.plan.types import Action, Plan, Resource, ref

SECRET_SID = "DoNotLogThisPolicyStatement"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": SECRET_SID,
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms", region_name="us-east-1")


def run(
    the_plan: Plan, kms: Any, *, audit: AuditLog | None = None, parallelism: int = 4
) -> tuple[ApplyResult, list[ApplyEvent]]:
    events: list[ApplyEvent] = []
    result = apply_plan(
        the_plan,
        writers(kms),
        parallelism=parallelism,
        limiter=None,
        on_event=events.append,
        audit=audit,
        retry=NO_WAIT,
    )
    return result, events


def existing_key(kms: Any, name: str, *, protected: bool = True) -> str:
    answer = kms.create_key(Description=name, Tags=identity_tags(name, protected=protected))
    return str(answer["KeyMetadata"]["KeyId"])


def state(kms: Any, key_id: str) -> str:
    return str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"])


def test_creates_key_alias_and_grant_resolving_the_new_key_id(kms: Any) -> None:
    the_plan = plan(
        create_key(
            "orders",
            call("EnableKeyRotation", KeyId=ref("key.orders")),
            call("DisableKey", KeyId=ref("key.orders")),
            Policy=POLICY,
        ),
        alias_create("alias/payments/orders", "orders"),
        grant_create("orders", "lambda"),
    )
    result, _ = run(the_plan, kms)

    assert result.ok
    key_id = result.created_keys["key.orders"]
    assert kms.describe_key(KeyId="alias/payments/orders")["KeyMetadata"]["KeyId"] == key_id
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    assert state(kms, key_id) == "Disabled"
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == POLICY
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
    assert tags == {
        "kmsplan:stack": STACK,
        "kmsplan:key": "orders",
        "kmsplan:deletion-protection": "true",
    }
    grants = kms.list_grants(KeyId=key_id)["Grants"]
    assert [(g["Name"], g["GranteePrincipal"]) for g in grants] == [("kmsplan/lambda", GRANTEE)]
    assert result.outcome("key.orders").calls_done == (
        "CreateKey",
        "EnableKeyRotation",
        "DisableKey",
    )  # type: ignore[union-attr]


def test_reports_start_and_finish_of_every_change_in_dependency_order(kms: Any) -> None:
    the_plan = plan(create_key("orders"), alias_create("alias/orders", "orders"))
    _, events = run(the_plan, kms)
    assert [(e.kind, e.address) for e in events] == [
        (EventKind.STARTED, "key.orders"),
        (EventKind.FINISHED, "key.orders"),
        (EventKind.STARTED, "alias.alias/orders"),
        (EventKind.FINISHED, "alias.alias/orders"),
    ]
    assert all(e.outcome.status is ChangeStatus.DONE for e in events if e.outcome)


def test_an_equal_grant_that_already_exists_is_not_created_again(kms: Any) -> None:
    key_id = existing_key(kms, "orders")
    the_plan = plan(grant_create("orders", "lambda", target=key_id))
    first, _ = run(the_plan, kms)
    second, _ = run(the_plan, kms)
    assert first.ok and second.ok
    assert len(kms.list_grants(KeyId=key_id)["Grants"]) == 1


def test_a_grant_with_the_same_name_but_other_operations_is_still_created(kms: Any) -> None:
    key_id = existing_key(kms, "orders")
    kms.create_grant(
        KeyId=key_id, Name="kmsplan/lambda", GranteePrincipal=GRANTEE, Operations=["Encrypt"]
    )
    result, _ = run(plan(grant_create("orders", "lambda", target=key_id)), kms)
    assert result.ok
    operations = sorted(tuple(g["Operations"]) for g in kms.list_grants(KeyId=key_id)["Grants"])
    assert operations == [("Decrypt", "GenerateDataKey"), ("Encrypt",)]


def test_create_alias_that_already_points_at_the_key_is_success(kms: Any) -> None:
    key_id = existing_key(kms, "orders")
    kms.create_alias(AliasName="alias/orders", TargetKeyId=key_id)
    result, _ = run(plan(alias_create("alias/orders", "orders", target=key_id)), kms)
    assert result.ok


def test_create_alias_held_by_another_key_fails_and_leaves_it_there(kms: Any) -> None:
    mine, other = existing_key(kms, "orders"), existing_key(kms, "other")
    kms.create_alias(AliasName="alias/orders", TargetKeyId=other)
    result, _ = run(plan(alias_create("alias/orders", "orders", target=mine)), kms)
    outcome = result.outcome("alias.alias/orders")
    assert outcome is not None and outcome.status is ChangeStatus.FAILED
    assert outcome.error_code == "AlreadyExistsException"
    assert outcome.error_message == (
        f"alias/orders already exists and points at key {other}, not {mine}; run plan again"
    )
    assert kms.describe_key(KeyId="alias/orders")["KeyMetadata"]["KeyId"] == other


def test_deletion_is_refused_at_apply_time_when_the_live_key_is_protected(kms: Any) -> None:
    # The plan was made while the key was unprotected; someone protected it since.
    key_id = existing_key(kms, "old", protected=True)
    result, _ = run(plan(key_deletion("old", key_id), gate=ALLOW_DELETE), kms)
    outcome = result.outcome("key.old")
    assert outcome is not None and outcome.status is ChangeStatus.FAILED
    assert outcome.error_code == "DeletionProtected"
    assert outcome.error_message == (
        f'refused by the safety gate: key {key_id} has kmsplan:deletion-protection "true" on the'
        ' live key (must be "false"); set deletion.protected: false for this key, apply that,'
        " then delete"
    )
    assert state(kms, key_id) == "Enabled"


@pytest.mark.parametrize(
    ("tag_value", "shown"),
    [
        (None, "missing"),
        ("TRUE", '"TRUE"'),
        ("yes", '"yes"'),
        ("", '""'),
        ("False", '"False"'),
        (" false", '" false"'),
    ],
)
def test_deletion_is_refused_at_apply_time_unless_the_live_tag_is_exactly_false(
    kms: Any, tag_value: str | None, shown: str
) -> None:
    # A missing or garbled protection tag protects: only "false" lets the deletion through.
    tags = [t for t in identity_tags("old", protected=False) if t["TagKey"] != TAG_PROTECTION]
    if tag_value is not None:
        tags.append({"TagKey": TAG_PROTECTION, "TagValue": tag_value})
    key_id = str(kms.create_key(Description="old", Tags=tags)["KeyMetadata"]["KeyId"])
    result, _ = run(plan(key_deletion("old", key_id), gate=ALLOW_DELETE), kms)
    outcome = result.outcome("key.old")
    assert outcome is not None and outcome.status is ChangeStatus.FAILED
    assert outcome.error_code == "DeletionProtected"
    assert outcome.error_message == (
        f"refused by the safety gate: key {key_id} has kmsplan:deletion-protection {shown} on"
        ' the live key (must be "false"); set deletion.protected: false for this key, apply'
        " that, then delete"
    )
    assert state(kms, key_id) == "Enabled"


def test_deletion_is_refused_at_apply_time_for_a_key_that_left_the_stack(kms: Any) -> None:
    key_id = kms.create_key(Tags=identity_tags("old", protected=False, stack="elsewhere"))[
        "KeyMetadata"
    ]["KeyId"]
    result, _ = run(plan(key_deletion("old", key_id), gate=ALLOW_DELETE), kms)
    outcome = result.outcome("key.old")
    assert outcome is not None and outcome.error_code == "NotManaged"
    assert state(kms, key_id) == "Enabled"


def test_unprotected_key_is_scheduled_for_deletion_by_arn_or_id(kms: Any) -> None:
    key_id = existing_key(kms, "old", protected=False)
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    result, _ = run(plan(key_deletion("old", arn), gate=ALLOW_DELETE), kms)
    assert result.ok
    assert state(kms, key_id) == "PendingDeletion"


def test_scheduling_a_key_already_pending_deletion_is_success_without_a_call(kms: Any) -> None:
    key_id = existing_key(kms, "old", protected=False)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    log = io.StringIO()
    result, _ = run(plan(key_deletion("old", key_id), gate=ALLOW_DELETE), kms, audit=AuditLog(log))
    assert result.ok
    operations = [json.loads(line)["operation"] for line in log.getvalue().splitlines()]
    assert operations == ["ListResourceTags", "DescribeKey"]


def test_restore_cancels_deletion_and_enables_the_key(kms: Any) -> None:
    key_id = existing_key(kms, "orders")
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    restore = change(
        "key.orders",
        Resource.KEY,
        Action.RESTORE,
        "orders",
        call("CancelKeyDeletion", KeyId=arn),
        call("EnableKey", KeyId=arn),
    )
    result, _ = run(plan(restore), kms)
    assert result.ok
    assert state(kms, key_id) == "Enabled"


def test_a_failure_skips_what_depends_on_it_and_finishes_the_rest(kms: Any) -> None:
    existing = existing_key(kms, "stale", protected=False)
    the_plan = plan(
        create_key("orders"),
        # ":" is not allowed in an alias name: KMS refuses it.
        alias_create("alias/bad:orders", "orders"),
        create_key("billing"),
        alias_create("alias/billing", "billing"),
        key_deletion("stale", existing),
        gate=ALLOW_DELETE,
    )
    result, _ = run(the_plan, kms)

    assert not result.ok
    failed = result.outcome("alias.alias/bad:orders")
    assert failed is not None and failed.status is ChangeStatus.FAILED
    assert (failed.failed_operation, failed.calls_done, failed.calls_not_done) == (
        "CreateAlias",
        (),
        ("CreateAlias",),
    )
    assert [o.address for o in result.with_status(ChangeStatus.DONE)] == [
        "key.orders",
        "key.billing",
        "alias.alias/billing",
    ]
    skipped = result.outcome("key.stale")
    assert skipped is not None and skipped.status is ChangeStatus.SKIPPED
    assert skipped.skipped_because == ("alias.alias/bad:orders",)
    assert skipped.describe() == "key.stale: skipped (depends on failed alias.alias/bad:orders)"
    assert state(kms, existing) == "Enabled"


def test_a_change_failing_half_way_says_what_was_done_and_what_was_not(kms: Any) -> None:
    key_id = existing_key(kms, "orders")
    update = change(
        "key.orders",
        Resource.KEY,
        Action.UPDATE,
        "orders",
        call("UpdateKeyDescription", KeyId=key_id, Description="new"),
        call("TagResource", KeyId="00000000-0000-0000-0000-000000000000", Tags=[]),
        call("EnableKeyRotation", KeyId=key_id),
    )
    result, _ = run(plan(update), kms)
    outcome = result.outcome("key.orders")
    assert outcome is not None
    assert outcome.calls_done == ("UpdateKeyDescription",)
    assert outcome.calls_not_done == ("TagResource", "EnableKeyRotation")
    assert outcome.failed_operation == "TagResource"
    assert outcome.error_code == "NotFoundException"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "new"
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


def test_audit_log_has_one_line_per_call_and_no_policy_or_grant_token(kms: Any) -> None:
    log = io.StringIO()
    the_plan = plan(
        create_key("orders", Policy=POLICY),
        alias_create("alias/orders", "orders"),
        grant_create("orders", "lambda"),
    )
    result, _ = run(the_plan, kms, audit=AuditLog(log), parallelism=1)
    key_id = result.created_keys["key.orders"]
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [(e["operation"], e["outcome"], e["address"]) for e in lines] == [
        ("CreateKey", "ok", "key.orders"),
        ("CreateAlias", "ok", "alias.alias/orders"),
        ("ListGrants", "ok", "grant.orders.lambda"),
        ("CreateGrant", "ok", "grant.orders.lambda"),
    ]
    assert all(e["key_id"] == key_id and e["request_id"] and "T" in e["time"] for e in lines)
    assert lines[1]["alias"] == "alias/orders"
    assert lines[3]["grant"] == "kmsplan/lambda"
    assert set().union(*lines) <= {
        "time",
        "operation",
        "outcome",
        "address",
        "key_id",
        "alias",
        "grant",
        "request_id",
    }
    assert SECRET_SID not in log.getvalue()


def test_audit_log_records_the_error_code_of_a_failed_call(kms: Any) -> None:
    log = io.StringIO()
    run(plan(create_key("a"), alias_create("alias/bad:a", "a")), kms, audit=AuditLog(log))
    last = json.loads(log.getvalue().splitlines()[-1])
    assert (last["operation"], last["outcome"]) == ("CreateAlias", "error")
    assert last["error_code"] == "ValidationException"


class RecordingLimiter:
    """Records every operation it is asked for; optionally holds CreateKey callers at a
    barrier, which only opens when two of them are in flight at once."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.operations: list[str] = []
        self._lock = threading.Lock()
        self._barrier = barrier

    def acquire(self, operation: str) -> None:
        with self._lock:
            self.operations.append(operation)
        if self._barrier is not None and operation == "CreateKey":
            self._barrier.wait()


def test_every_call_goes_through_the_limiter(kms: Any) -> None:
    limiter = RecordingLimiter()
    log = io.StringIO()
    the_plan = plan(create_key("orders"), grant_create("orders", "lambda"))
    result = apply_plan(
        the_plan,
        writers(kms),
        parallelism=2,
        limiter=limiter,
        on_event=lambda _e: None,
        audit=AuditLog(log),
    )
    assert result.ok
    audited = [json.loads(line)["operation"] for line in log.getvalue().splitlines()]
    assert limiter.operations == audited == ["CreateKey", "ListGrants", "CreateGrant"]


def test_independent_changes_run_concurrently(kms: Any) -> None:
    # Sequential execution would leave the first CreateKey alone at the barrier, which then
    # breaks (after its timeout, a deadlock guard) and fails the test.
    limiter = RecordingLimiter(threading.Barrier(2, timeout=30))
    the_plan = plan(create_key("a"), create_key("b"))
    result = apply_plan(
        the_plan, writers(kms), parallelism=2, limiter=limiter, on_event=lambda _e: None, audit=None
    )
    assert result.ok
    assert sorted(result.created_keys) == ["key.a", "key.b"]


def test_a_new_keys_alias_does_not_wait_behind_every_other_key_create(kms: Any) -> None:
    # Two slots, four keys with an alias each. Aliases use their own quota (CreateAlias), so
    # the first alias that becomes ready takes the next free slot instead of queueing behind
    # the remaining CreateKey calls; otherwise a large apply runs the CreateKey and
    # CreateAlias quotas one after the other.
    keys = ["a", "b", "c", "d"]
    the_plan = plan(*(create_key(k) for k in keys), *(alias_create(f"alias/{k}", k) for k in keys))
    result, events = run(the_plan, kms, parallelism=2)
    assert result.ok
    started = [e.change.address for e in events if e.kind is EventKind.STARTED]
    first_alias = min(started.index(f"alias.alias/{k}") for k in keys)
    assert first_alias < started.index("key.d"), started
