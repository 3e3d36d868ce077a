"""The reader's conversions (pure) and the answers moto cannot give (Stubber): rotation
periods, multi-page grants, GetKeyLastUsage, IAM access denied."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import defaultdict, deque
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import ANY, Stubber

from kmsplan.aws.client import AwsClients
from kmsplan.aws.reader import (
    build_key,
    grant_from_api,
    kms_can_rotate,
    last_usage,
    principal_exists,
    read_live,
)
from kmsplan.model import (
    Deletion,
    Grant,
    GrantConstraints,
    KeyState,
    LastUsage,
    Rotation,
    Stack,
)

ACCOUNT = "111122223333"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}"
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
T1 = datetime(2025, 6, 1, tzinfo=timezone.utc)


@pytest.fixture
def clients() -> AwsClients:
    return AwsClients.create(profile=None, region="us-east-1", endpoint_url=None, parallelism=1)


def metadata(**overrides: Any) -> dict[str, Any]:
    return {"KeyId": KEY_ID, "Arn": ARN, "KeyState": "Enabled", **overrides}


def build(**overrides: Any) -> Any:
    args: dict[str, Any] = {
        "name": "orders",
        "metadata": metadata(),
        "tags": (),
        "policy_text": "{}",
        "rotation": Rotation(),
        "grants": (),
        "window_days": 30,
    }
    args.update(overrides)
    return build_key(**args)


# ---- build_key ----


def test_absent_usage_and_multi_region_read_as_kms_defaults() -> None:
    key = build()
    assert (key.spec, key.usage, key.origin, key.multi_region) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
        False,
    )


def test_deprecated_customer_master_key_spec_is_used_when_key_spec_is_absent() -> None:
    assert build(metadata=metadata(CustomerMasterKeySpec="RSA_2048")).spec == "RSA_2048"


@pytest.mark.parametrize(
    ("value", "protected"),
    [("false", False), ("true", True), ("False", True), ("", True), (None, True)],
)
def test_only_an_exact_false_tag_turns_deletion_protection_off(
    value: str | None, protected: bool
) -> None:
    tags = () if value is None else (("kmsplan:deletion-protection", value),)
    assert build(tags=tags, window_days=9).deletion == Deletion(protected=protected, window_days=9)


def test_reserved_and_aws_tags_are_live_tags_but_not_user_tags() -> None:
    tags = (
        ("aws:cloudformation:stack-name", "x"),
        ("kmsplan:key", "orders"),
        ("kmsplan:stack", "prod"),
        ("team", "a"),
    )
    key = build(tags=tags)
    assert key.tags == (("team", "a"),)
    assert key.live_tags == tags


def test_unparseable_or_non_object_policy_is_none_with_the_text_kept() -> None:
    assert build(policy_text="{not json").policy is None
    assert build(policy_text="[1, 2]").policy is None
    assert build(policy_text="[1, 2]").policy_text == "[1, 2]"
    assert build(policy_text='{"Version": "2012-10-17"}').policy == {"Version": "2012-10-17"}


def test_state_enabled_flag_and_deletion_date() -> None:
    key = build(metadata=metadata(KeyState="PendingDeletion", DeletionDate=T1, Enabled=False))
    assert key.state is KeyState.PENDING_DELETION
    assert key.enabled is False
    assert key.deletion_date == "2025-06-01T00:00:00+00:00"


def test_unknown_key_state_reads_as_none_and_not_enabled() -> None:
    key = build(metadata=metadata(KeyState="SomethingNew"))
    assert key.state is None
    assert key.enabled is False


def test_grants_are_split_into_owned_and_foreign() -> None:
    grants = [
        {"GrantId": "g2", "Name": "kmsplan/b", "GranteePrincipal": "r", "Operations": ["Sign"]},
        {"GrantId": "g1", "Name": "kmsplan/a", "GranteePrincipal": "r", "Operations": ["Sign"]},
        {"GrantId": "g3", "Name": "rds", "GranteePrincipal": "r", "Operations": ["Decrypt"]},
        {"GrantId": "g4", "GranteePrincipal": "r", "Operations": ["Decrypt"]},
    ]
    key = build(grants=grants)
    assert [(g.name, g.grant_id) for g in key.grants] == [("a", "g1"), ("b", "g2")]
    assert [(g.name, g.grant_id) for g in key.foreign_grants] == [("", "g4"), ("rds", "g3")]


def test_only_names_under_exactly_kmsplan_slash_are_owned_grants() -> None:
    names = ["kmsplanner-x", "kmsplan", "kmsplan-x", "Kmsplan/x", "x/kmsplan/y", "kmsplan/x"]
    grants = [
        {"GrantId": f"g{i}", "Name": n, "GranteePrincipal": "r", "Operations": ["Decrypt"]}
        for i, n in enumerate(names)
    ]
    key = build(grants=grants)
    assert [(g.name, g.grant_id) for g in key.grants] == [("x", "g5")]
    assert sorted(g.name for g in key.foreign_grants) == sorted(names[:-1])


def test_grant_fields_and_constraints_are_normalized() -> None:
    grant = grant_from_api(
        {
            "GrantId": "g1",
            "Name": "kmsplan/app",
            "GranteePrincipal": "arn:aws:iam::1:role/app",
            "RetiringPrincipal": "arn:aws:iam::1:role/ops",
            "Operations": ["GenerateDataKey", "Decrypt"],
            "Constraints": {"EncryptionContextEquals": {"z": "1", "a": "2"}},
        }
    )
    assert grant == Grant(
        name="kmsplan/app",
        grantee="arn:aws:iam::1:role/app",
        operations=("Decrypt", "GenerateDataKey"),
        retiring_principal="arn:aws:iam::1:role/ops",
        constraints=GrantConstraints(encryption_context_equals=(("a", "2"), ("z", "1"))),
    )
    assert grant.grant_id == "g1"
    assert grant_from_api({"Name": "x", "Operations": [], "Constraints": {}}).constraints is None


@pytest.mark.parametrize(
    ("overrides", "rotatable"),
    [
        ({}, True),
        ({"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}, True),
        ({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, False),
        ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, False),
        ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, False),
        ({"Origin": "EXTERNAL"}, False),
        ({"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": "cks-1"}, False),
        ({"CustomKeyStoreId": "cks-1"}, False),
    ],
)
def test_only_symmetric_kms_generated_keys_can_rotate(
    overrides: dict[str, Any], rotatable: bool
) -> None:
    assert kms_can_rotate(metadata(**overrides)) is rotatable


# ---- read_live through Stubber ----


class StubByOperation:
    """Like botocore's Stubber, but each operation answers from its own queue: read_live lists
    the Region's aliases beside the per-key reads, on the same client, so their order varies."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._queues: defaultdict[str, deque[tuple[dict[str, Any], Any]]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._next = threading.local()

    def add_response(self, method: str, response: dict[str, Any], expected: Any = None) -> None:
        operation = self._client.meta.method_to_api_mapping[method]
        self._queues[operation].append((response, expected))

    def _check(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        # Called with the API parameters, in the calling thread, right before _answer.
        with self._lock:
            queue = self._queues[model.name]
            assert queue, f"unexpected call {model.name}({params})"
            response, expected = queue.popleft()
        if expected is not None:
            assert params == expected, (model.name, params)
        self._next.response = response

    def _answer(self, **_: Any) -> Any:
        return AWSResponse("", 200, {}, None), self._next.response

    def assert_no_pending_responses(self) -> None:
        pending = {op: len(q) for op, q in self._queues.items() if q}
        assert not pending, pending

    def __enter__(self) -> StubByOperation:
        self._client.meta.events.register_first("before-parameter-build.*.*", self._check)
        self._client.meta.events.register_first("before-call.*.*", self._answer)
        return self

    def __exit__(self, *_: object) -> None:
        self._client.meta.events.unregister("before-parameter-build.*.*", self._check)
        self._client.meta.events.unregister("before-call.*.*", self._answer)


def stub_read(clients: AwsClients, kms: StubByOperation, *, key_metadata: dict[str, Any]) -> None:
    """The KMS calls read_live makes for a stack with one key."""
    kms.add_response("list_aliases", {"Aliases": [], "Truncated": False}, {"Limit": 100})
    kms.add_response(
        "list_resource_tags",
        {
            "Tags": [
                {"TagKey": "kmsplan:stack", "TagValue": "prod"},
                {"TagKey": "kmsplan:key", "TagValue": "orders"},
            ],
            "Truncated": False,
        },
        {"KeyId": KEY_ID, "Limit": 50},
    )
    kms.add_response("describe_key", {"KeyMetadata": key_metadata}, {"KeyId": KEY_ID})
    kms.add_response(
        "get_key_policy",
        {"Policy": json.dumps({"Version": "2012-10-17"}), "PolicyName": "default"},
        {"KeyId": KEY_ID, "PolicyName": "default"},
    )


def read_one(clients: AwsClients, add_rest: Any, key_metadata: dict[str, Any]) -> Any:
    with (
        Stubber(clients.sts) as sts,
        Stubber(clients.tagging) as tagging,
        StubByOperation(clients.kms) as kms,
    ):
        sts.add_response(
            "get_caller_identity",
            {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:role/ci", "UserId": "A"},
        )
        tagging.add_response(
            "get_resources",
            {"ResourceTagMappingList": [{"ResourceARN": ARN, "Tags": []}]},
            {"ResourceTypeFilters": ["kms:key"], "TagFilters": ANY, "ResourcesPerPage": 100},
        )
        stub_read(clients, kms, key_metadata=key_metadata)
        add_rest(kms)
        live = read_live(clients, Stack(name="prod"))
        kms.assert_no_pending_responses()
    return live


def test_rotation_period_and_multi_page_grants_are_read(clients: AwsClients) -> None:
    # moto never reports RotationPeriodInDays and ignores Limit/Marker: Stubber answers.
    def rest(kms: StubByOperation) -> None:
        kms.add_response(
            "get_key_rotation_status",
            {"KeyRotationEnabled": True, "RotationPeriodInDays": 180},
            {"KeyId": KEY_ID},
        )
        grant = {"KeyId": KEY_ID, "GranteePrincipal": "r", "Operations": ["Decrypt"]}
        kms.add_response(
            "list_grants",
            {
                "Grants": [{**grant, "GrantId": "1", "Name": "kmsplan/a"}],
                "Truncated": True,
                "NextMarker": "m",
            },
            {"KeyId": KEY_ID, "Limit": 100},
        )
        kms.add_response(
            "list_grants",
            {"Grants": [{**grant, "GrantId": "2", "Name": "kmsplan/b"}], "Truncated": False},
            {"KeyId": KEY_ID, "Limit": 100, "Marker": "m"},
        )

    live = read_one(clients, rest, metadata(CreationDate=T0))

    [key] = live.keys
    assert key.rotation == Rotation(enabled=True, period_days=180)
    assert [g.name for g in key.grants] == ["a", "b"]
    assert live.account_id == ACCOUNT


def test_keys_kms_cannot_rotate_are_not_asked_for_rotation_status(clients: AwsClients) -> None:
    def rest(kms: StubByOperation) -> None:
        kms.add_response("list_grants", {"Grants": [], "Truncated": False}, None)

    live = read_one(clients, rest, metadata(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY"))

    # The Stubber would fail on an unexpected GetKeyRotationStatus call.
    assert live.keys[0].rotation == Rotation(enabled=False, period_days=None)


# ---- GetKeyLastUsage (moto answers HTTP 500: Stubber) ----


def test_last_usage_known_with_timestamp(clients: AwsClients) -> None:
    with Stubber(clients.kms_no_retry) as kms:
        kms.add_response(
            "get_key_last_usage",
            {
                "KeyId": KEY_ID,
                "KeyLastUsage": {"Operation": "Decrypt", "Timestamp": T1},
                "TrackingStartDate": T0,
                "KeyCreationDate": T0,
            },
            {"KeyId": KEY_ID},
        )
        usage = last_usage(clients, KEY_ID)
    assert usage == LastUsage(
        known=True,
        last_used="2025-06-01T00:00:00+00:00",
        tracking_start="2025-01-01T00:00:00+00:00",
    )


def test_last_usage_never_used_since_creation(clients: AwsClients) -> None:
    with Stubber(clients.kms_no_retry) as kms:
        kms.add_response(
            "get_key_last_usage",
            {"KeyId": KEY_ID, "TrackingStartDate": T0, "KeyCreationDate": T1},
            {"KeyId": KEY_ID},
        )
        usage = last_usage(clients, KEY_ID)
    assert usage == LastUsage(
        known=True,
        last_used=None,
        tracking_start="2025-01-01T00:00:00+00:00",
        detail="never used since it was created",
    )


def test_last_usage_of_a_key_older_than_tracking_says_so(clients: AwsClients) -> None:
    with Stubber(clients.kms_no_retry) as kms:
        kms.add_response(
            "get_key_last_usage",
            {"KeyId": KEY_ID, "TrackingStartDate": T1, "KeyCreationDate": T0},
            {"KeyId": KEY_ID},
        )
        usage = last_usage(clients, KEY_ID)
    assert usage.known is True
    assert usage.last_used is None
    assert usage.tracking_start == "2025-06-01T00:00:00+00:00"
    assert usage.detail == (
        "no use recorded since tracking began (2025-06-01T00:00:00+00:00); earlier use is not known"
    )


def test_last_usage_access_denied_is_unknown_not_an_error(clients: AwsClients) -> None:
    with Stubber(clients.kms_no_retry) as kms:
        kms.add_client_error("get_key_last_usage", "AccessDeniedException", "denied", 400)
        usage = last_usage(clients, KEY_ID)
    assert usage == LastUsage(
        known=False, detail="GetKeyLastUsage failed: AccessDeniedException: denied"
    )


def test_last_usage_without_the_api_in_botocore_is_unknown(clients: AwsClients) -> None:
    old_kms = SimpleNamespace(
        meta=SimpleNamespace(service_model=SimpleNamespace(operation_names=[]))
    )
    usage = last_usage(dataclasses.replace(clients, kms_no_retry=old_kms), KEY_ID)
    assert usage.known is False
    assert usage.detail.startswith("GetKeyLastUsage is not available in this botocore (")


# ---- IAM principal checks ----


def test_principal_check_denied_is_unknown_with_a_warning(clients: AwsClients) -> None:
    warnings: list[str] = []
    arn = f"arn:aws:iam::{ACCOUNT}:role/app"
    with Stubber(clients.iam) as iam:
        iam.add_client_error("get_role", "AccessDenied", "no iam:GetRole", 403)
        assert principal_exists(clients, ACCOUNT, arn, warnings.append) is None
    assert warnings == [f"cannot check whether {arn} exists: AccessDenied: no iam:GetRole"]


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (f"arn:aws:iam::{ACCOUNT}:root", True),
        ("arn:aws:iam::999999999999:role/app", None),
        (f"arn:aws:iam::{ACCOUNT}:group/admins", None),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/app/session", None),
        ("*", None),
    ],
)
def test_principals_that_need_no_iam_call(clients: AwsClients, arn: str, expected: Any) -> None:
    with Stubber(clients.iam):  # any IAM call would fail: none is expected
        assert principal_exists(clients, ACCOUNT, arn) is expected


def test_role_path_is_not_part_of_the_role_name(clients: AwsClients) -> None:
    with Stubber(clients.iam) as iam:
        iam.add_client_error(
            "get_role", "NoSuchEntity", "gone", 404, expected_params={"RoleName": "app"}
        )
        assert principal_exists(clients, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:role/a/b/app") is False
