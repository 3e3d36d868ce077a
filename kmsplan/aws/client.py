"""boto3 clients for KMS, STS, IAM and the Resource Groups Tagging API, and the helpers every
AWS call in kmsplan goes through.

- Clients are created once, up front, and shared by all threads (boto3 clients are
  thread-safe; sessions are not).
- Every HTTP request a client sends, retries included, first waits for the shared
  per-operation `RateLimiter` (a `before-send` hook: retried attempts count against the
  quota too, so limiting `before-call` alone would let retries exceed it).
- botocore retries throttling and transient errors in `standard` mode with `max_attempts`
  (default 10: enough to ride out sustained throttling by other callers in the account).
- Endpoints: `endpoint_url` (``--endpoint-url``) applies to all four services, because local
  emulators serve them all from one address. Without it botocore's own resolution applies:
  ``AWS_ENDPOINT_URL_KMS`` redirects KMS only and ``AWS_ENDPOINT_URL`` every service.
- `call` and `paginate` turn botocore's exceptions into `KmsplanError`s, so no traceback
  reaches the user: `AwsError(operation, code, message)` for an error answer from AWS, a plain
  `KmsplanError` with a readable message for missing credentials, unreachable endpoints and
  the like.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.exceptions
from botocore import xform_name
from botocore.client import BaseClient
from botocore.config import Config

from kmsplan import __version__
from kmsplan.aws.quotas import merged_quotas
from kmsplan.aws.ratelimit import RateLimiter
from kmsplan.errors import AwsError, KmsplanError

if TYPE_CHECKING:
    from mypy_boto3_iam.client import IAMClient
    from mypy_boto3_kms.client import KMSClient
    from mypy_boto3_resourcegroupstaggingapi.client import ResourceGroupsTaggingAPIClient
    from mypy_boto3_sts.client import STSClient

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

NO_REGION_MESSAGE = "no region: pass --region, set region: in the manifest, or AWS_REGION"

# Error codes meaning "you may not do this" across KMS, RGTA, STS and IAM.
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorized"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AwsClients:
    """The clients of one account and Region, sharing one rate limiter."""

    kms: KMSClient
    sts: STSClient
    iam: IAMClient
    tagging: ResourceGroupsTaggingAPIClient
    # KMS with retries disabled: for calls whose failure is itself an answer (GetKeyLastUsage
    # is unimplemented on some emulators, and retrying a 500 would only stall the plan).
    kms_no_retry: KMSClient
    limiter: RateLimiter
    region: str
    endpoint_url: str | None = None
    parallelism: int = 16

    @classmethod
    def create(
        cls,
        *,
        profile: str | None,
        region: str | None,
        endpoint_url: str | None,
        parallelism: int = 16,
        quotas: Mapping[str, float] | None = None,
        max_attempts: int = 10,
        headroom: float = 1.0,
        limiter: RateLimiter | None = None,
    ) -> AwsClients:
        """Create the clients. `region` None means the standard chain (AWS_REGION, profile).

        `quotas` overrides entries of DEFAULT_QUOTAS. Pass an existing `limiter` to share
        quotas between several AwsClients of the same account and Region.
        """
        if parallelism < 1:
            raise ValueError(f"parallelism must be at least 1, got {parallelism}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        with aws_errors("configure AWS session"):
            session = boto3.session.Session(profile_name=profile)
        # botocore reads AWS_DEFAULT_REGION and the profile, but not AWS_REGION (the variable
        # the other AWS SDKs and the CLI v2 use); honour both, AWS_REGION first.
        resolved_region = region or os.environ.get("AWS_REGION") or session.region_name
        if not resolved_region:
            raise KmsplanError(NO_REGION_MESSAGE)
        if limiter is None:
            try:
                limiter = RateLimiter(merged_quotas(quotas), headroom=headroom)
            except ValueError as exc:
                raise KmsplanError(f"invalid request quotas: {exc}") from None

        def config(attempts: int) -> Config:
            return Config(
                region_name=resolved_region,
                retries={"mode": "standard", "total_max_attempts": attempts},
                # urllib3 discards connections beyond the pool size; one per worker thread.
                max_pool_connections=max(10, parallelism),
                user_agent_extra=f"kmsplan/{__version__}",
            )

        hook = _rate_limit_hook(limiter)
        with aws_errors("create AWS clients"):
            try:
                kms = session.client("kms", config=config(max_attempts), endpoint_url=endpoint_url)
                kms_no_retry = session.client("kms", config=config(1), endpoint_url=endpoint_url)
                sts = session.client("sts", config=config(max_attempts), endpoint_url=endpoint_url)
                iam = session.client("iam", config=config(max_attempts), endpoint_url=endpoint_url)
                tagging = session.client(
                    "resourcegroupstaggingapi",
                    config=config(max_attempts),
                    endpoint_url=endpoint_url,
                )
            except ValueError as exc:  # botocore's answer to a malformed endpoint URL
                source = (
                    f"--endpoint-url {endpoint_url!r}"
                    if endpoint_url is not None
                    else "endpoint URL (from AWS_ENDPOINT_URL* or the profile)"
                )
                raise KmsplanError(
                    f"invalid {source}: {exc}; expected a URL such as http://127.0.0.1:4599"
                ) from None
        for client in (kms, kms_no_retry, sts, iam, tagging):
            client.meta.events.register("before-send", hook)
        return cls(
            kms=kms,
            sts=sts,
            iam=iam,
            tagging=tagging,
            kms_no_retry=kms_no_retry,
            limiter=limiter,
            region=resolved_region,
            endpoint_url=endpoint_url,
            parallelism=parallelism,
        )

    def call(self, client: BaseClient, operation: str, **params: Any) -> dict[str, Any]:
        """`call(client, operation, **params)`, for callers holding an AwsClients."""
        return call(client, operation, **params)


def _rate_limit_hook(limiter: RateLimiter) -> Callable[..., None]:
    def before_send(event_name: str = "", **_: Any) -> None:
        # event_name is "before-send.<service-id>.<Operation>".
        limiter.acquire(event_name.rsplit(".", 1)[-1])

    return before_send


@contextlib.contextmanager
def aws_errors(operation: str) -> Iterator[None]:
    """Translate botocore exceptions raised inside the block into KmsplanErrors."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        raise error_from_client_error(operation, exc) from None
    except botocore.exceptions.NoCredentialsError:
        raise KmsplanError(
            f"{operation}: no AWS credentials found: use --profile, set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where a role is available"
        ) from None
    except botocore.exceptions.ProfileNotFound as exc:
        raise KmsplanError(f"AWS profile not found: {exc.kwargs.get('profile', '')}") from None
    except botocore.exceptions.EndpointConnectionError as exc:
        raise KmsplanError(
            f"{operation}: cannot connect to {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}"
        ) from None
    except (
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
    ) as exc:
        raise KmsplanError(f"{operation}: timed out talking to AWS: {exc}") from None
    except botocore.exceptions.ParamValidationError as exc:
        raise KmsplanError(f"{operation}: invalid request: {exc}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise KmsplanError(f"{operation}: {exc}") from None


def error_from_client_error(operation: str, exc: botocore.exceptions.ClientError) -> AwsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "Unknown")
    message = str(error.get("Message") or "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if message.lstrip().startswith("<"):
        # Not an AWS error document: a proxy's or an emulator's HTML error page (moto answers
        # unimplemented operations this way). Its markup helps nobody reading a plan.
        message = f"HTTP {status}: the endpoint answered with an error page, not an AWS error"
    elif not message:
        message = f"(no message; HTTP {status})" if status else "(no message)"
    return AwsError(operation, code, message)


def is_access_denied(error: AwsError) -> bool:
    return error.code in ACCESS_DENIED_CODES


def call(client: BaseClient, operation: str, **params: Any) -> dict[str, Any]:
    """Call `operation` ("DescribeKey") on `client`; errors become KmsplanErrors."""
    method = getattr(client, xform_name(operation))
    with aws_errors(operation):
        response: dict[str, Any] = method(**params)
    return response


def paginate(
    client: BaseClient,
    operation: str,
    result_key: str,
    *,
    page_size: int | None = None,
    **params: Any,
) -> list[Any]:
    """Every item of `result_key` over all pages of `operation`.

    Uses botocore's paginator (which also guards against a token repeated forever); an
    operation without one is a single call.
    """
    method = xform_name(operation)
    items: list[Any] = []
    with aws_errors(operation):
        if not client.can_paginate(method):
            items.extend(call(client, operation, **params).get(result_key) or [])
            return items
        config = {"PageSize": page_size} if page_size else {}
        pages = client.get_paginator(method).paginate(**params, PaginationConfig=config)
        for page in pages:
            items.extend(page.get(result_key) or [])
    return items


def run_concurrently(fn: Callable[[T], R], items: Iterable[T], parallelism: int) -> list[R]:
    """`[fn(item) for item in items]` on up to `parallelism` threads, results in item order.

    On the first failure, work not yet started is cancelled, running work finishes, and the
    failure of the earliest item that failed is raised.
    """
    work: Sequence[T] = list(items)
    if parallelism <= 1 or len(work) <= 1:
        return [fn(item) for item in work]
    with ThreadPoolExecutor(
        max_workers=min(parallelism, len(work)), thread_name_prefix="kmsplan-aws"
    ) as pool:
        futures: list[Future[R]] = [pool.submit(fn, item) for item in work]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
    for future in futures:
        error = None if future.cancelled() else future.exception()
        if error is not None:
            raise error
    return [future.result() for future in futures]


def caller_identity(clients: AwsClients) -> tuple[str, str]:
    """(account id, caller ARN) of the credentials in use."""
    answer = call(clients.sts, "GetCallerIdentity")
    return str(answer["Account"]), str(answer["Arn"])
