"""The applier's port to KMS: one call in, the answer or one of kmsplan's errors out; the
botocore hooks that keep CreateKey / CreateGrant from being retried blindly and hand
throttling to the applier."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from helpers import http_answer, scripted_kms_client

from kmsplan.aws.client import AwsClients
from kmsplan.aws.writer import (
    AmbiguousOutcome,
    KmsCallError,
    KmsWriter,
    RequestFailed,
    Throttled,
    writers_for,
)
from kmsplan.errors import KmsplanError
from kmsplan.model import Placement

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
THROTTLED = (400, b'{"__type": "ThrottlingException", "message": "Rate exceeded"}')
INTERNAL = (500, b'{"__type": "KMSInternalException", "message": "internal"}')
CREATED = (200, b'{"KeyMetadata": {"KeyId": "%s"}}' % KEY_ID.encode())
HOME = Placement(account_id="123456789012", region="us-east-1")


def test_an_answer_comes_back_without_transport_metadata_and_with_its_request_id() -> None:
    kms = boto3.client("kms", region_name="us-east-1")
    with Stubber(kms) as stubber:
        stubber.add_response(
            "describe_key",
            {
                "KeyMetadata": {"KeyId": KEY_ID, "KeyState": "Enabled"},
                "ResponseMetadata": {"RequestId": "req-1"},
            },
            {"KeyId": KEY_ID},
        )
        answer = KmsWriter(kms).call("DescribeKey", {"KeyId": KEY_ID})
    assert answer.body == {"KeyMetadata": {"KeyId": KEY_ID, "KeyState": "Enabled"}}
    assert answer.request_id == "req-1"


def test_an_error_answer_is_a_kms_call_error_with_operation_code_message_and_request_id() -> None:
    kms = boto3.client("kms", region_name="us-east-1")
    with Stubber(kms) as stubber:
        stubber.add_client_error(
            "enable_key",
            "NotFoundException",
            f"{KEY_ID} not found",
            400,
            response_meta={"RequestId": "req-2"},
        )
        with pytest.raises(KmsCallError) as caught:
            KmsWriter(kms).call("EnableKey", {"KeyId": KEY_ID})
    error = caught.value
    assert not isinstance(error, Throttled)
    assert isinstance(error, KmsplanError)
    assert (error.operation, error.code, error.message, error.request_id) == (
        "EnableKey",
        "NotFoundException",
        f"{KEY_ID} not found",
        "req-2",
    )


def test_invalid_parameters_are_a_request_failure_naming_the_reason() -> None:
    kms = boto3.client("kms", region_name="us-east-1")
    with pytest.raises(RequestFailed) as caught:
        KmsWriter(kms).call("EnableKey", {"KeyId": 42})
    assert (caught.value.operation, caught.value.reason) == ("EnableKey", "ParamValidationError")
    assert "Invalid type for parameter KeyId" in caught.value.message


def test_an_unreachable_endpoint_is_a_request_failure() -> None:
    kms = boto3.client(
        "kms",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # the discard port: nothing listens
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    with pytest.raises(RequestFailed) as caught:
        KmsWriter(kms).call("EnableKey", {"KeyId": KEY_ID})
    assert caught.value.reason == "EndpointConnectionError"
    assert "127.0.0.1:9" in caught.value.message


def clients_answered_by(status: int, body: bytes) -> AwsClients:
    """kmsplan's own clients (with their check of what an AWS answer is), answered in-process."""
    clients = AwsClients.create(
        profile=None, region="us-east-1", endpoint_url="http://127.0.0.1:9", max_attempts=1
    )
    clients.kms.meta.events.register("before-send.kms", lambda **_: http_answer(status, body))
    return clients


SIGN_IN_PAGE = b"<!DOCTYPE html><html><body>Sign in</body></html>"
NOT_AWS = (
    "the endpoint http://127.0.0.1:9 did not answer like AWS (an HTML page with HTTP 200);"
    " check --endpoint-url, AWS_ENDPOINT_URL* and any proxy in between"
)


def test_an_answer_that_is_not_an_aws_answer_is_a_request_failure() -> None:
    writer = KmsWriter(clients_answered_by(200, SIGN_IN_PAGE).kms)
    with pytest.raises(RequestFailed) as caught:
        writer.call("ListGrants", {"KeyId": KEY_ID})
    assert (caught.value.operation, caught.value.reason, caught.value.message) == (
        "ListGrants",
        "NotAnAwsAnswer",
        NOT_AWS,
    )


def test_an_answer_to_create_key_that_is_not_an_aws_answer_is_ambiguous() -> None:
    # The request may have reached KMS: the applier looks the key up before creating again.
    writer = KmsWriter(clients_answered_by(200, SIGN_IN_PAGE).kms)
    with pytest.raises(AmbiguousOutcome) as caught:
        writer.call("CreateKey", {})
    assert str(caught.value) == f"CreateKey: outcome unknown (NotAnAwsAnswer: {NOT_AWS})"


# ---- lost answers ---------------------------------------------------------------------------


def test_a_5xx_create_key_is_an_ambiguous_outcome_without_a_retry() -> None:
    sent: list[str] = []
    writer = KmsWriter(scripted_kms_client([INTERNAL, CREATED], sent))
    with pytest.raises(AmbiguousOutcome) as lost:
        writer.call("CreateKey", {})
    assert str(lost.value) == "CreateKey: outcome unknown (HTTP 500 KMSInternalException)"
    assert sent == ["CreateKey"]


def test_a_5xx_create_grant_is_an_ambiguous_outcome_without_a_retry() -> None:
    sent: list[str] = []
    writer = KmsWriter(scripted_kms_client([INTERNAL, (200, b"{}")], sent))
    params = {"KeyId": KEY_ID, "GranteePrincipal": "arn:aws:iam::1:root", "Operations": ["Sign"]}
    with pytest.raises(AmbiguousOutcome):
        writer.call("CreateGrant", params)
    assert sent == ["CreateGrant"]


def test_other_operations_are_left_to_botocore_retries() -> None:
    sent: list[str] = []
    writer = KmsWriter(scripted_kms_client([INTERNAL, (200, b"{}")], sent))
    writer.call("EnableKey", {"KeyId": KEY_ID})
    assert sent == ["EnableKey", "EnableKey"]


# ---- throttling -----------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["CreateKey", "EnableKey", "ListGrants"])
def test_a_throttled_answer_is_handed_back_at_once_not_retried_by_botocore(operation: str) -> None:
    sent: list[str] = []
    kms = scripted_kms_client([THROTTLED, CREATED], sent)
    writer = KmsWriter(kms)
    KmsWriter(kms)  # a second writer on the same client must not double the hooks
    with pytest.raises(Throttled) as caught:
        writer.call(operation, {"KeyId": KEY_ID} if operation != "CreateKey" else {})
    assert (caught.value.operation, caught.value.code, caught.value.message) == (
        operation,
        "ThrottlingException",
        "Rate exceeded",
    )
    assert sent == [operation]


def test_a_throttled_then_answered_call_succeeds_on_the_next_call() -> None:
    sent: list[str] = []
    writer = KmsWriter(scripted_kms_client([THROTTLED, CREATED], sent))
    with pytest.raises(Throttled):
        writer.call("CreateKey", {})
    assert writer.call("CreateKey", {}).body == {"KeyMetadata": {"KeyId": KEY_ID}}


# ---- one writer per placement ---------------------------------------------------------------


def test_writers_for_gives_each_placement_its_own_clients_writer() -> None:
    other = Placement(account_id="123456789012", region="eu-west-1")
    sent_home: list[str] = []
    sent_other: list[str] = []
    writers = writers_for(
        {
            HOME: scripted_kms_client([(200, b"{}")], sent_home),
            other: scripted_kms_client([(200, b"{}")], sent_other),
        }
    )
    assert writers(HOME) is writers(HOME)
    writers(other).call("EnableKey", {"KeyId": KEY_ID})
    assert (sent_home, sent_other) == ([], ["EnableKey"])


def test_a_placement_without_clients_is_a_clear_error() -> None:
    writers = writers_for({HOME: boto3.client("kms", region_name="us-east-1")})
    elsewhere = Placement(account_id="210987654321", region="us-east-1")
    with pytest.raises(KmsplanError) as caught:
        writers(elsewhere)
    assert str(caught.value) == (
        "no KMS client for account/Region 210987654321/us-east-1"
        " (this run has: 123456789012/us-east-1)"
    )
