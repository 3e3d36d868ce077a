"""read_live against the moto server: keys are created with boto3 directly, then read back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import REGION, CallCounter, make_client, make_kms_client

from kmsplan.aws.client import AwsClients
from kmsplan.aws.reader import read_live
from kmsplan.model import (
    Deletion,
    Grant,
    GrantConstraints,
    Key,
    KeyState,
    Rotation,
    Stack,
)

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
STACK = "prod"
PER_KEY_OPERATIONS = (
    "ListResourceTags",
    "DescribeKey",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "ListGrants",
)


@pytest.fixture
def kms(endpoint: str) -> Any:
    return make_kms_client(endpoint)


@pytest.fixture
def clients(endpoint: str) -> AwsClients:
    return AwsClients.create(profile=None, region=REGION, endpoint_url=endpoint, parallelism=4)


@pytest.fixture
def counter(clients: AwsClients) -> CallCounter:
    return CallCounter(clients.kms, clients.kms_no_retry, clients.tagging, clients.sts, clients.iam)


def create_key(
    kms: Any,
    name: str | None,
    *,
    stack: str | None = STACK,
    protection: str | None = None,
    **params: Any,
) -> str:
    tags = []
    if stack is not None:
        tags.append({"TagKey": "kmsplan:stack", "TagValue": stack})
    if name is not None:
        tags.append({"TagKey": "kmsplan:key", "TagValue": name})
    if protection is not None:
        tags.append({"TagKey": "kmsplan:deletion-protection", "TagValue": protection})
    tags += params.pop("Tags", [])
    if tags:
        params["Tags"] = tags
    return str(kms.create_key(**params)["KeyMetadata"]["KeyId"])


def desired(*names: str) -> Stack:
    return Stack(name=STACK, region=REGION, keys=tuple(Key(name=n) for n in names))


def test_managed_key_is_read_into_the_model(kms: Any, clients: AwsClients) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Root",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    key_id = create_key(
        kms,
        "orders",
        protection="false",
        Description="orders data",
        Policy=json.dumps(policy),
        Tags=[{"TagKey": "team", "TagValue": "payments"}, {"TagKey": "empty", "TagValue": ""}],
    )
    kms.enable_key_rotation(KeyId=key_id)
    kms.create_alias(AliasName="alias/orders", TargetKeyId=key_id)
    kms.create_alias(AliasName="alias/orders-v2", TargetKeyId=key_id)
    grantee = f"arn:aws:iam::{ACCOUNT}:role/app"
    kms.create_grant(
        KeyId=key_id,
        Name="kmsplan/app",
        GranteePrincipal=grantee,
        Operations=["GenerateDataKey", "Decrypt"],
        Constraints={"EncryptionContextSubset": {"b": "2", "a": "1"}},
    )
    foreign_id = kms.create_grant(
        KeyId=key_id, Name="ebs-volume", GranteePrincipal=grantee, Operations=["Decrypt"]
    )["GrantId"]

    live = read_live(clients, desired("orders"))

    assert (live.stack, live.account_id, live.region) == (STACK, ACCOUNT, REGION)
    assert live.caller_arn.startswith("arn:aws:") and ACCOUNT in live.caller_arn
    assert live.warnings == ()
    [key] = live.keys
    assert key == Key(
        name="orders",
        description="orders data",
        aliases=("alias/orders", "alias/orders-v2"),
        # moto does not report the rotation period: unknown, not a difference.
        rotation=Rotation(enabled=True, period_days=None),
        deletion=Deletion(protected=False),
        tags=(("empty", ""), ("team", "payments")),
        policy=policy,
        grants=(
            Grant(
                name="app",
                grantee=grantee,
                operations=("Decrypt", "GenerateDataKey"),
                constraints=GrantConstraints(encryption_context_subset=(("a", "1"), ("b", "2"))),
            ),
        ),
    )
    assert key.key_id == key_id
    assert key.arn == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
    assert key.state is KeyState.ENABLED
    assert key.policy_text is not None and json.loads(key.policy_text) == policy
    assert [(g.name, g.grant_id) for g in key.foreign_grants] == [("ebs-volume", foreign_id)]
    assert ("kmsplan:stack", STACK) in key.live_tags
    assert ("team", "payments") in key.live_tags
    assert {a.name: a.target_key_id for a in live.aliases} == {
        "alias/orders": key_id,
        "alias/orders-v2": key_id,
    }


def test_moto_omitted_fields_read_as_kms_defaults_and_protection_defaults_on(
    kms: Any, clients: AwsClients
) -> None:
    create_key(kms, "plain")  # no KeyUsage/MultiRegion in moto's answer, no protection tag

    [key] = read_live(clients, desired("plain")).keys

    assert (key.spec, key.usage, key.origin, key.multi_region) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
        False,
    )
    assert key.enabled is True
    assert key.deletion == Deletion(protected=True)
    assert key.rotation == Rotation(enabled=False)


def test_pending_window_comes_from_the_manifest_because_kms_does_not_report_it(
    kms: Any, clients: AwsClients
) -> None:
    create_key(kms, "kept")
    create_key(kms, "gone")
    stack = Stack(
        name=STACK,
        keys=(Key(name="kept", deletion=Deletion(window_days=7)),),
        default_window_days=10,
    )

    live = read_live(clients, stack)

    assert {k.name: k.deletion.window_days for k in live.keys} == {"kept": 7, "gone": 10}


def test_unmanaged_and_other_stack_keys_cost_no_per_key_calls(
    kms: Any, clients: AwsClients, counter: CallCounter
) -> None:
    for _ in range(20):
        create_key(kms, None, stack=None)
    create_key(kms, "orders", stack="staging")
    create_key(kms, "orders")
    create_key(kms, "users")

    live = read_live(clients, desired("orders", "users"))

    assert [k.name for k in live.keys] == ["orders", "users"]
    for operation in PER_KEY_OPERATIONS:
        assert counter[operation] == 2, operation
    assert counter["ListKeys"] == 0  # nothing to create: no confirmation scan
    assert counter["GetResources"] == 1
    assert counter["ListAliases"] == 1
    assert counter["GetCallerIdentity"] == 1
    assert sum(counter.calls.values()) == 3 + 5 * 2


def test_desired_key_not_discovered_triggers_a_scan_that_confirms_it_is_absent(
    kms: Any, clients: AwsClients, counter: CallCounter
) -> None:
    unmanaged = [create_key(kms, None, stack=None) for _ in range(3)]
    create_key(kms, "orders")

    live = read_live(clients, desired("orders", "new-key"))

    assert [k.name for k in live.keys] == ["orders"]
    assert counter["ListKeys"] == 1
    scanned = {p["KeyId"] for op, p in counter.params if op == "ListResourceTags"}
    assert set(unmanaged) <= scanned
    # The scan reads tags only; unmanaged keys are never described.
    assert counter["DescribeKey"] == 1


def test_key_missed_by_lagging_tag_discovery_is_found_by_the_scan(
    kms: Any, clients: AwsClients, counter: CallCounter
) -> None:
    lagging = create_key(kms, "orders", Description="created a moment ago")
    create_key(kms, "users")

    def drop_lagging_key(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ResourceTagMappingList"] = [
            m for m in parsed["ResourceTagMappingList"] if not m["ResourceARN"].endswith(lagging)
        ]

    clients.tagging.meta.events.register(
        "after-call.resource-groups-tagging-api.GetResources", drop_lagging_key
    )

    live = read_live(clients, desired("orders", "users"))

    orders = live.key("orders")
    assert orders is not None and orders.key_id == lagging
    assert orders.description == "created a moment ago"
    assert counter["ListKeys"] == 1
    # Found by its tags during the scan: those tags are not read a second time.
    assert [p["KeyId"] for op, p in counter.params if op == "ListResourceTags"].count(lagging) == 1


def test_stale_discovery_answer_for_a_key_that_left_the_stack_is_ignored(
    kms: Any, clients: AwsClients
) -> None:
    other = create_key(kms, "orders", stack="staging")
    create_key(kms, "users")
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{other}"

    def add_stale_entry(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ResourceTagMappingList"].append(
            {"ResourceARN": arn, "Tags": [{"Key": "kmsplan:stack", "Value": STACK}]}
        )

    clients.tagging.meta.events.register(
        "after-call.resource-groups-tagging-api.GetResources", add_stale_entry
    )

    live = read_live(clients, desired("users"))

    assert [k.name for k in live.keys] == ["users"]


def test_tag_discovery_denied_falls_back_to_a_scan_with_a_warning(
    kms: Any, clients: AwsClients, counter: CallCounter
) -> None:
    create_key(kms, "orders")
    create_key(kms, None, stack=None)

    def deny(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "GetResources"
        )

    clients.tagging.meta.events.register(
        "before-call.resource-groups-tagging-api.GetResources", deny
    )

    live = read_live(clients, desired("orders"))

    assert [k.name for k in live.keys] == ["orders"]
    assert counter["ListKeys"] == 1
    assert live.warnings == (
        "tag discovery unavailable (AccessDeniedException: not allowed); listing every key of "
        "the Region instead (slower; allow tag:GetResources to avoid this)",
    )


def test_pending_deletion_key_is_read_with_its_state(kms: Any, clients: AwsClients) -> None:
    key_id = create_key(kms, "old")
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)

    [key] = read_live(clients, desired()).keys

    assert key.state is KeyState.PENDING_DELETION
    assert key.enabled is False
    assert key.deletion_date is not None and key.deletion_date[:2] == "20"


def test_aws_managed_keys_are_skipped_even_if_tagged(kms: Any, clients: AwsClients) -> None:
    # moto cannot create a KeyManager=AWS key: mark one as AWS managed in DescribeKey's answer.
    aws_managed = create_key(kms, "imposter")
    create_key(kms, "orders")

    def mark_aws_managed(parsed: dict[str, Any], **_: Any) -> None:
        if parsed["KeyMetadata"]["KeyId"] == aws_managed:
            parsed["KeyMetadata"]["KeyManager"] = "AWS"

    clients.kms.meta.events.register("after-call.kms.DescribeKey", mark_aws_managed)

    live = read_live(clients, desired("orders"))

    assert [k.name for k in live.keys] == ["orders"]
    # moto always lists 14 alias/aws/* aliases; none is reported.
    assert not [a for a in live.aliases if a.name.startswith("alias/aws/")]


def test_unparseable_live_policy_is_kept_as_text(kms: Any, clients: AwsClients) -> None:
    key_id = create_key(kms, "broken")
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy="{not json")

    [key] = read_live(clients, desired("broken")).keys

    assert key.policy is None
    assert key.policy_text == "{not json"


def test_two_keys_with_one_name_keep_the_live_one_and_warn(kms: Any, clients: AwsClients) -> None:
    pending = create_key(kms, "orders")
    kms.schedule_key_deletion(KeyId=pending, PendingWindowInDays=7)
    live_id = create_key(kms, "orders")

    live = read_live(clients, desired("orders"))

    [key] = live.keys
    assert key.key_id == live_id
    assert live.warnings == (
        f"2 keys carry kmsplan:stack={STACK}, kmsplan:key=orders: using {live_id}, "
        f"ignoring {pending}",
    )


def test_stack_tagged_key_without_a_name_is_ignored_with_a_warning(
    kms: Any, clients: AwsClients
) -> None:
    nameless = create_key(kms, None)

    live = read_live(clients, desired())

    assert live.keys == ()
    assert live.warnings == (
        f"key {nameless} is tagged kmsplan:stack={STACK} but has no kmsplan:key tag; ignored",
    )


def test_last_usage_unknown_on_moto_without_retrying(
    kms: Any, clients: AwsClients, endpoint: str
) -> None:
    create_key(kms, "old")
    attempts: list[str] = []
    clients.kms_no_retry.meta.events.register(
        "before-send.kms.GetKeyLastUsage", lambda **_: attempts.append("sent")
    )

    live = read_live(clients, desired(), deletion_candidates=["old", "not-live"])

    # moto answers GetKeyLastUsage with HTTP 500 (unimplemented).
    usage = live.last_usage["old"]
    assert usage.known is False
    assert usage.detail.startswith("GetKeyLastUsage failed: 500")
    assert attempts == ["sent"]
    assert set(live.last_usage) == {"old"}


def test_principals_are_checked_in_iam(endpoint: str, clients: AwsClients) -> None:
    iam = make_client("iam", endpoint)
    iam.create_role(RoleName="app", Path="/svc/", AssumeRolePolicyDocument="{}")
    iam.create_user(UserName="alice")
    role = f"arn:aws:iam::{ACCOUNT}:role/svc/app"
    user = f"arn:aws:iam::{ACCOUNT}:user/alice"
    gone = f"arn:aws:iam::{ACCOUNT}:role/deleted"
    foreign = "arn:aws:iam::999999999999:role/app"

    live = read_live(clients, desired(), check_principals=[role, user, gone, foreign])

    assert live.principals == {role: True, user: True, gone: False, foreign: None}
    assert live.warnings == ()


def test_known_identity_saves_the_sts_call(
    kms: Any, clients: AwsClients, counter: CallCounter
) -> None:
    live = read_live(clients, desired(), identity=(ACCOUNT, "arn:aws:iam::123456789012:user/x"))

    assert counter["GetCallerIdentity"] == 0
    assert (live.account_id, live.caller_arn) == (ACCOUNT, "arn:aws:iam::123456789012:user/x")
