"""Grants and rotation on keys declared disabled, against KMS as it really behaves.

Real KMS answers CreateGrant, EnableKeyRotation and DisableKeyRotation on a Disabled key with
DisabledException; moto accepts them. A botocore hook plays real KMS here, so these tests show
the differ's order (the key's trailing disable after its grants; a temporary enable for a key
that stays disabled) converges where the former order (DisableKey inside the key's change)
failed on every apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from apply_plans import call, create_key, grant_create, identity_tags, plan, writers
from builders import NOW, desired_key, grant, live_key, live_state, stack
from helpers import refuse_on_disabled_key
from moto import mock_aws

from kmsplan.apply import NO_WAIT, ApplyEvent, ApplyResult, ChangeStatus, EventKind, apply_plan
from kmsplan.model import Key, LiveState, Rotation, Stack
from kmsplan.plan.differ import diff
from kmsplan.plan.types import Action, GateOptions, Plan, ref

GRANTEE = "arn:aws:iam::123456789012:role/app"


@pytest.fixture
def refused() -> list[str]:
    return []


@pytest.fixture
def kms(refused: list[str]) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        refuse_on_disabled_key(client, refused)
        yield client


def run(the_plan: Plan, kms: Any) -> tuple[ApplyResult, list[ApplyEvent]]:
    events: list[ApplyEvent] = []
    result = apply_plan(
        the_plan,
        writers(kms),
        parallelism=4,
        limiter=None,
        on_event=events.append,
        audit=None,
        retry=NO_WAIT,
    )
    return result, events


def planned(desired: Stack, live: LiveState) -> Plan:
    return diff(desired, live, GateOptions(), now=NOW)


def state(kms: Any, key_id: str) -> str:
    return str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"])


def grant_names(kms: Any, key_id: str) -> list[str]:
    return sorted(g["Name"] for g in kms.list_grants(KeyId=key_id)["Grants"])


def live_key_in(kms: Any, desired: Key, *, enabled: bool, rotation: bool = False) -> Key:
    """A key of the stack that exists in KMS, and as the reader would see it."""
    key_id = kms.create_key(Tags=identity_tags(desired.name, protected=True))["KeyMetadata"][
        "KeyId"
    ]
    if rotation:
        kms.enable_key_rotation(KeyId=key_id)
    if not enabled:
        kms.disable_key(KeyId=key_id)
    return live_key(
        desired,
        key_id=key_id,
        enabled=enabled,
        grants=(),
        rotation=Rotation(enabled=rotation),
    )


def finished_order(events: list[ApplyEvent]) -> list[str]:
    return [e.address for e in events if e.kind is EventKind.FINISHED]


def test_the_former_order_fails_on_a_disabled_key_as_real_kms_refuses_it(
    kms: Any, refused: list[str]
) -> None:
    # DisableKey inside the key's change, before the grant: what the differ used to plan.
    former = plan(
        create_key("orders", call("DisableKey", KeyId=ref("key.orders"))),
        grant_create("orders", "lambda"),
    )
    result, _ = run(former, kms)
    outcome = result.outcome("grant.orders.lambda")
    assert outcome is not None and outcome.status is ChangeStatus.FAILED
    assert (outcome.failed_operation, outcome.error_code) == ("CreateGrant", "DisabledException")
    key_id = result.created_keys["key.orders"]
    assert grant_names(kms, key_id) == []
    assert refused == ["CreateGrant"]


def test_new_disabled_key_with_grants_is_created_granted_then_disabled(
    kms: Any, refused: list[str]
) -> None:
    desired = desired_key(
        "orders",
        enabled=False,
        rotation=Rotation(enabled=True),
        grants=[grant("lambda", grantee=GRANTEE), grant("batch", grantee=GRANTEE)],
    )
    result, events = run(planned(stack(desired), live_state()), kms)
    assert result.ok, [o.describe() for o in result.outcomes]
    assert refused == []
    key_id = result.created_keys["key.orders"]
    assert state(kms, key_id) == "Disabled"
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    assert grant_names(kms, key_id) == ["kmsplan/batch", "kmsplan/lambda"]
    assert finished_order(events)[-1] == "key.orders.disable"
    # The disable is part of creating the key: a key and two grants added, nothing changed.
    assert (result.count(Action.CREATE), result.count(Action.UPDATE)) == (3, 0)


def test_disabling_a_key_while_adding_a_grant_grants_first(kms: Any, refused: list[str]) -> None:
    desired = desired_key("orders", enabled=False, grants=[grant("new", grantee=GRANTEE)])
    live = live_key_in(kms, desired_key("orders"), enabled=True)
    the_plan = planned(stack(desired), live_state(live))
    assert [c.address for c in the_plan.changes] == ["grant.orders.new", "key.orders.disable"]
    result, _ = run(the_plan, kms)
    assert result.ok, [o.describe() for o in result.outcomes]
    assert refused == []
    assert state(kms, str(live.key_id)) == "Disabled"
    assert grant_names(kms, str(live.key_id)) == ["kmsplan/new"]


def test_key_that_stays_disabled_is_enabled_for_a_grant_and_rotation_then_disabled(
    kms: Any, refused: list[str]
) -> None:
    desired = desired_key(
        "orders",
        enabled=False,
        rotation=Rotation(enabled=True),
        grants=[grant("new", grantee=GRANTEE)],
    )
    live = live_key_in(kms, desired_key("orders", enabled=False), enabled=False)
    the_plan = planned(stack(desired), live_state(live))
    assert [(c.address, [x.operation for x in c.calls]) for c in the_plan.changes] == [
        ("key.orders", ["EnableKey", "EnableKeyRotation"]),
        ("grant.orders.new", ["CreateGrant"]),
        ("key.orders.disable", ["DisableKey"]),
    ]
    result, events = run(the_plan, kms)
    assert result.ok, [o.describe() for o in result.outcomes]
    assert refused == []
    key_id = str(live.key_id)
    assert state(kms, key_id) == "Disabled"
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    assert grant_names(kms, key_id) == ["kmsplan/new"]
    assert finished_order(events) == ["key.orders", "grant.orders.new", "key.orders.disable"]


def test_without_the_temporary_enable_the_same_changes_are_refused(
    kms: Any, refused: list[str]
) -> None:
    live = live_key_in(kms, desired_key("orders", enabled=False), enabled=False)
    key_id = str(live.key_id)
    result, _ = run(plan(grant_create("orders", "new", target=key_id)), kms)
    outcome = result.outcome("grant.orders.new")
    assert outcome is not None and outcome.error_code == "DisabledException"
    with pytest.raises(kms.exceptions.DisabledException):
        kms.enable_key_rotation(KeyId=key_id)
    assert refused == ["CreateGrant", "EnableKeyRotation"]
    assert state(kms, key_id) == "Disabled"
