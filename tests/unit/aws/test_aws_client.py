"""AwsClients construction, error translation, rate-limit hook, pagination and concurrency.

Nothing here talks to a server: answers come from botocore's Stubber or from `before-send`
hooks that return canned HTTP responses.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import ExponentialBackoff
from botocore.stub import Stubber

from kmsplan.aws.client import (
    NO_REGION_MESSAGE,
    AwsClients,
    call,
    caller_identity,
    paginate,
    run_concurrently,
)
from kmsplan.aws.ratelimit import RateLimiter
from kmsplan.errors import AwsError, KmsplanError

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


class RecordingLimiter(RateLimiter):
    def __init__(self) -> None:
        super().__init__({})
        self.acquired: list[str] = []
        self._lock = threading.Lock()

    def acquire(self, operation: str) -> None:
        with self._lock:
            self.acquired.append(operation)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def json_response(status: int, body: dict[str, Any]) -> AWSResponse:
    return AWSResponse("https://kms.test", status, {}, _Body(json.dumps(body).encode()))  # type: ignore[arg-type]


def make(**kwargs: Any) -> AwsClients:
    kwargs.setdefault("profile", None)
    kwargs.setdefault("region", "us-east-1")
    kwargs.setdefault("endpoint_url", None)
    return AwsClients.create(**kwargs)


# ---- construction ----


def test_region_comes_from_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert make(region="eu-west-1").region == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert make(region=None).kms.meta.region_name == "ap-south-1"
    # AWS_REGION (which botocore itself ignores) comes before AWS_DEFAULT_REGION.
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert make(region=None).kms.meta.region_name == "eu-central-1"
    assert make(region="eu-west-1").region == "eu-west-1"


def test_no_region_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(KmsplanError) as info:
        make(region=None)
    assert str(info.value) == NO_REGION_MESSAGE
    assert NO_REGION_MESSAGE == (
        "no region: pass --region, set region: in the manifest, or AWS_REGION"
    )


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(KmsplanError, match=r"^AWS profile not found: nope$"):
        make(profile="nope")


def test_endpoint_url_applies_to_every_service() -> None:
    clients = make(endpoint_url="http://127.0.0.1:4566")
    for client in (clients.kms, clients.kms_no_retry, clients.sts, clients.iam, clients.tagging):
        assert client.meta.endpoint_url == "http://127.0.0.1:4566"


def test_aws_endpoint_url_kms_redirects_kms_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:4599")
    clients = make()
    assert clients.kms.meta.endpoint_url == "http://127.0.0.1:4599"
    assert clients.sts.meta.endpoint_url == "https://sts.us-east-1.amazonaws.com"


def test_malformed_endpoint_url_is_a_clear_error_not_a_traceback() -> None:
    with pytest.raises(KmsplanError) as raised:
        make(endpoint_url="notaurl")
    assert str(raised.value) == (
        "invalid --endpoint-url 'notaurl': Invalid endpoint: notaurl; "
        "expected a URL such as http://127.0.0.1:4599"
    )


def test_malformed_endpoint_from_the_environment_names_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "bad")
    with pytest.raises(KmsplanError, match=r"^invalid endpoint URL \(from AWS_ENDPOINT_URL\*"):
        make()


def test_retries_are_standard_mode_with_the_requested_attempts() -> None:
    clients = make(max_attempts=7, parallelism=32)
    retries = clients.kms.meta.config.retries
    assert retries == {"mode": "standard", "total_max_attempts": 7}
    assert clients.kms_no_retry.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert clients.kms.meta.config.max_pool_connections == 32


def test_bad_quota_override_is_a_clear_error() -> None:
    with pytest.raises(KmsplanError, match=r"^invalid request quotas: quota for CreateKey must"):
        make(quotas={"CreateKey": 0})


# ---- rate limiting ----


def test_every_attempt_of_every_service_goes_through_the_limiter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    limiter = RecordingLimiter()
    clients = make(limiter=limiter, max_attempts=5)
    answers = [
        json_response(400, {"__type": "ThrottlingException", "message": "slow down"}),
        json_response(400, {"__type": "ThrottlingException", "message": "slow down"}),
        json_response(200, {"KeyMetadata": {"KeyId": KEY_ID}}),
    ]
    clients.kms.meta.events.register("before-send", lambda **_: answers.pop(0))
    clients.tagging.meta.events.register(
        "before-send", lambda **_: json_response(200, {"ResourceTagMappingList": []})
    )

    call(clients.kms, "DescribeKey", KeyId=KEY_ID)
    paginate(clients.tagging, "GetResources", "ResourceTagMappingList")

    # Throttled attempts count against the quota too, so each one waited for a slot.
    assert limiter.acquired == ["DescribeKey"] * 3 + ["GetResources"]


def test_clients_share_the_given_limiter() -> None:
    limiter = RecordingLimiter()
    assert make(limiter=limiter).limiter is limiter


# ---- error translation ----


def test_client_error_becomes_aws_error_with_code_and_message() -> None:
    clients = make()
    with Stubber(clients.kms) as stub:
        stub.add_client_error(
            "describe_key", "NotFoundException", f"Key '{KEY_ID}' does not exist", 400
        )
        with pytest.raises(AwsError) as info:
            call(clients.kms, "DescribeKey", KeyId=KEY_ID)
    error = info.value
    assert (error.operation, error.code) == ("DescribeKey", "NotFoundException")
    assert str(error) == f"DescribeKey failed: NotFoundException: Key '{KEY_ID}' does not exist"
    assert error.__cause__ is None and error.__suppress_context__


def test_error_without_message_names_the_http_status() -> None:
    clients = make()
    with Stubber(clients.kms) as stub:
        stub.add_client_error("describe_key", "AccessDeniedException", "", 400)
        with pytest.raises(
            AwsError,
            match=r"^DescribeKey failed: AccessDeniedException: "
            r"\(no message; HTTP 400\)$",
        ):
            call(clients.kms, "DescribeKey", KeyId=KEY_ID)


def test_an_html_error_page_is_not_quoted_into_the_message() -> None:
    clients = make()
    page = "<!doctype html>\n<html><title>500 Internal Server Error</title></html>"
    with Stubber(clients.kms) as stub:
        stub.add_client_error("get_key_last_usage", "500", page, 500)
        with pytest.raises(AwsError) as info:
            call(clients.kms, "GetKeyLastUsage", KeyId=KEY_ID)
    assert str(info.value) == (
        "GetKeyLastUsage failed: 500: HTTP 500: the endpoint answered with an error page, "
        "not an AWS error"
    )


def test_missing_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    clients = make(endpoint_url="http://127.0.0.1:1")
    with pytest.raises(KmsplanError) as info:
        call(clients.kms, "ListKeys")
    assert str(info.value) == (
        "ListKeys: no AWS credentials found: use --profile, set AWS_PROFILE or "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where a role is available"
    )


def test_unreachable_endpoint_is_a_clear_error() -> None:
    # Port 1 on loopback: connection refused at once; one attempt so nothing is retried.
    clients = make(endpoint_url="http://127.0.0.1:1", max_attempts=1)
    with pytest.raises(KmsplanError) as info:
        call(clients.kms, "ListKeys")
    assert str(info.value) == "ListKeys: cannot connect to http://127.0.0.1:1/"
    assert not isinstance(info.value, AwsError)


def test_invalid_parameters_are_a_kmsplan_error() -> None:
    clients = make()
    with pytest.raises(KmsplanError, match=r"^DescribeKey: invalid request: "):
        call(clients.kms, "DescribeKey")


# ---- pagination (moto ignores Limit/Marker: pages come from Stubber) ----


def test_list_grants_follows_markers_across_pages() -> None:
    clients = make()
    grant = {"KeyId": KEY_ID, "GrantId": "g", "Operations": ["Decrypt"]}
    with Stubber(clients.kms) as stub:
        stub.add_response(
            "list_grants",
            {"Grants": [{**grant, "GrantId": "g1"}], "Truncated": True, "NextMarker": "m1"},
            {"KeyId": KEY_ID, "Limit": 100},
        )
        stub.add_response(
            "list_grants",
            {"Grants": [{**grant, "GrantId": "g2"}], "Truncated": True, "NextMarker": "m2"},
            {"KeyId": KEY_ID, "Limit": 100, "Marker": "m1"},
        )
        stub.add_response(
            "list_grants",
            {"Grants": [{**grant, "GrantId": "g3"}], "Truncated": False},
            {"KeyId": KEY_ID, "Limit": 100, "Marker": "m2"},
        )
        grants = paginate(clients.kms, "ListGrants", "Grants", page_size=100, KeyId=KEY_ID)
        stub.assert_no_pending_responses()
    assert [g["GrantId"] for g in grants] == ["g1", "g2", "g3"]


def test_list_aliases_pages_are_concatenated() -> None:
    clients = make()
    with Stubber(clients.kms) as stub:
        stub.add_response(
            "list_aliases",
            {"Aliases": [{"AliasName": "alias/a"}], "Truncated": True, "NextMarker": "m"},
            {},
        )
        stub.add_response(
            "list_aliases",
            {"Aliases": [{"AliasName": "alias/b"}], "Truncated": False},
            {"Marker": "m"},
        )
        aliases = paginate(clients.kms, "ListAliases", "Aliases")
        stub.assert_no_pending_responses()
    assert [a["AliasName"] for a in aliases] == ["alias/a", "alias/b"]


def test_get_resources_follows_pagination_tokens_until_empty() -> None:
    clients = make()
    arn = "arn:aws:kms:us-east-1:123456789012:key/"
    with Stubber(clients.tagging) as stub:
        stub.add_response(
            "get_resources",
            {"ResourceTagMappingList": [{"ResourceARN": arn + "k1"}], "PaginationToken": "t"},
            {"ResourceTypeFilters": ["kms:key"], "ResourcesPerPage": 100},
        )
        stub.add_response(
            "get_resources",
            {"ResourceTagMappingList": [{"ResourceARN": arn + "k2"}], "PaginationToken": ""},
            {"ResourceTypeFilters": ["kms:key"], "ResourcesPerPage": 100, "PaginationToken": "t"},
        )
        found = paginate(
            clients.tagging,
            "GetResources",
            "ResourceTagMappingList",
            page_size=100,
            ResourceTypeFilters=["kms:key"],
        )
        stub.assert_no_pending_responses()
    assert [m["ResourceARN"] for m in found] == [arn + "k1", arn + "k2"]


def test_invalid_marker_is_an_aws_error() -> None:
    clients = make()
    with Stubber(clients.kms) as stub:
        stub.add_response("list_keys", {"Keys": [], "Truncated": True, "NextMarker": "bad"}, {})
        stub.add_client_error("list_keys", "InvalidMarkerException", "bad marker", 400)
        expected = r"^ListKeys failed: InvalidMarkerException: bad marker$"
        with pytest.raises(AwsError, match=expected):
            paginate(clients.kms, "ListKeys", "Keys")


def test_caller_identity_returns_account_and_arn() -> None:
    clients = make()
    with Stubber(clients.sts) as stub:
        stub.add_response(
            "get_caller_identity",
            {"Account": "111122223333", "Arn": "arn:aws:iam::111122223333:user/ci", "UserId": "A"},
            {},
        )
        assert caller_identity(clients) == ("111122223333", "arn:aws:iam::111122223333:user/ci")


# ---- concurrency ----


def test_run_concurrently_keeps_item_order() -> None:
    assert run_concurrently(lambda n: n * n, range(50), 8) == [n * n for n in range(50)]
    assert run_concurrently(lambda n: n + 1, [1, 2], 1) == [2, 3]
    assert run_concurrently(lambda n: n, [], 8) == []


def test_run_concurrently_raises_the_failure_of_the_earliest_item() -> None:
    second_failed = threading.Event()

    def work(n: int) -> int:
        if n == 0:
            second_failed.wait(timeout=30)  # fails only after item 1 has failed
            raise KmsplanError("item 0 failed")
        if n == 1:
            second_failed.set()
            raise KmsplanError("item 1 failed")
        return n

    with pytest.raises(KmsplanError, match=r"^item 0 failed$"):
        run_concurrently(work, range(2), 2)


def test_client_error_inside_run_concurrently_reaches_the_caller_translated() -> None:
    clients = make()

    def describe(key_id: str) -> dict[str, Any]:
        return call(clients.kms, "DescribeKey", KeyId=key_id)

    with Stubber(clients.kms) as stub:
        stub.add_client_error("describe_key", "KMSInternalException", "boom", 500)
        stub.add_client_error("describe_key", "KMSInternalException", "boom", 500)
        with pytest.raises(AwsError, match="KMSInternalException: boom"):
            run_concurrently(describe, [KEY_ID, KEY_ID], 4)


# ---- answers that are not AWS's ----


def raw_answer(clients: AwsClients, status: int, body: bytes) -> None:
    """Every request of `clients.kms` and `clients.sts` is answered with `body`."""

    def before_send(**_: Any) -> AWSResponse:
        return AWSResponse("https://kms.test", status, {}, _Body(body))  # type: ignore[arg-type]

    for client in (clients.kms, clients.sts):
        client.meta.events.register("before-send", before_send)


ENDPOINT = "https://kms.us-east-1.amazonaws.com"
HINT = "check --endpoint-url, AWS_ENDPOINT_URL* and any proxy in between"


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "an HTML page with HTTP 200"),
        (b"", "an empty answer with HTTP 200"),
        (b'{"Keys": [', "not JSON, with HTTP 200"),
        (b"[]", "JSON that is not an object, HTTP 200"),
        (b"{}", "its answer has no Keys"),
        (
            b'{"Keys": "none"}',
            "AttributeError while reading its answer: 'str' object has no attribute 'get'",
        ),
    ],
    ids=["html", "empty", "truncated", "array", "no-list", "not-a-list"],
)
def test_a_json_answer_that_is_not_aws_s_is_one_clear_error(body: bytes, what: str) -> None:
    clients = make(max_attempts=1)
    raw_answer(clients, 200, body)
    with pytest.raises(KmsplanError) as info:
        paginate(clients.kms, "ListKeys", "Keys")
    assert str(info.value) == (
        f"ListKeys: the endpoint {ENDPOINT} did not answer like AWS ({what}); {HINT}"
    )


def test_an_operation_without_output_accepts_an_empty_or_null_answer() -> None:
    clients = make(max_attempts=1)
    for body in (b"", b"null", b"{}"):
        raw_answer(clients, 200, body)
        assert call(clients.kms, "EnableKey", KeyId=KEY_ID)["ResponseMetadata"]


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<html><body>Sign in</body></html>", "an HTML page with HTTP 200"),
        (b"<x/>", "KeyError while reading its answer: 'GetCallerIdentityResult'"),
        (
            b'{"Account": "1"}',
            "Unable to parse response (not well-formed (invalid token): "
            "line 1, column 0), invalid XML received",
        ),
    ],
    ids=["html", "other-xml", "json"],
)
def test_an_xml_answer_that_is_not_aws_s_is_one_clear_error(body: bytes, what: str) -> None:
    clients = make(max_attempts=1)
    raw_answer(clients, 200, body)
    with pytest.raises(KmsplanError) as info:
        caller_identity(clients)
    assert str(info.value) == (
        f"GetCallerIdentity: the endpoint https://sts.us-east-1.amazonaws.com did not answer "
        f"like AWS ({what}); {HINT}"
    )


def test_an_answer_without_a_field_aws_always_sends_is_one_clear_error() -> None:
    clients = make()
    with Stubber(clients.sts) as stub:
        stub.add_response("get_caller_identity", {"Arn": "arn:aws:iam::1:user/ci"}, {})
        with pytest.raises(KmsplanError) as info:
            caller_identity(clients)
    assert str(info.value) == (
        "GetCallerIdentity: the endpoint https://sts.us-east-1.amazonaws.com did not answer "
        f"like AWS (its answer has no Account); {HINT}"
    )
