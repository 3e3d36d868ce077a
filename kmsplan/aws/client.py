"""boto3 clients for KMS, STS, IAM and the Resource Groups Tagging API, and the helpers every
AWS call in kmsplan goes through.

- Clients are created once, up front, and shared by all threads (boto3 clients are
  thread-safe; sessions are not).
- Every HTTP request a client sends, retries included, first waits for the shared
  per-operation `RateLimiter` (a `before-send` hook: retried attempts count against the
  quota too, so limiting `before-call` alone would let retries exceed it), and every answer
  tells the limiter whether it was throttled (a `response-received` hook), so that each API's
  rate adapts to what the account's other callers leave of the quota.
- botocore retries throttling and transient errors in `standard` mode with `max_attempts`
  (default 10). The applier's writes are the exception: their throttling is retried by the
  applier itself, with no limit but the apply's time budget (kmsplan.aws.writer).
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
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.credentials
import botocore.exceptions
import botocore.parsers
import botocore.session
from botocore import xform_name
from botocore.client import BaseClient
from botocore.config import Config

from kmsplan import __version__
from kmsplan.aws.inflight import InFlight
from kmsplan.aws.known_principals import KnownPrincipals
from kmsplan.aws.quotas import is_throttling, merged_quotas
from kmsplan.aws.ratelimit import RateLimiter
from kmsplan.errors import AwsError, KmsplanError
from kmsplan.model import Role

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
    profile: str | None = None
    # The role the clients work as (None: the base credentials), and its session name.
    role: Role | None = None
    session_name: str = "kmsplan"
    # The run's budget of requests in flight, when several stacks share it.
    inflight: InFlight | None = None
    # The clients of another Region of the same account, when a run's pool keeps them (so
    # that every caller in one account and Region shares its rate limiter).
    regional: Callable[[str], AwsClients] | None = field(default=None, compare=False)
    # The session the clients were made from: its credentials (a role's, refreshed) serve
    # the clients of the same identity in other Regions, without assuming the role again.
    session: boto3.session.Session | None = field(default=None, compare=False, repr=False)
    # IAM principal checks answered for the run's other stacks, when several share them.
    known_principals: KnownPrincipals | None = field(default=None, compare=False, repr=False)

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
        role: Role | None = None,
        session_name: str = "kmsplan",
        inflight: InFlight | None = None,
        session: boto3.session.Session | None = None,
    ) -> AwsClients:
        """Create the clients. `region` None means the standard chain (AWS_REGION, profile).

        `quotas` overrides entries of DEFAULT_QUOTAS. Pass an existing `limiter` to share
        quotas between several AwsClients of the same account and Region. With `role`, every
        client works with the role's credentials (see `assume`). With `inflight`, every request
        also holds a slot of that budget while it is on the wire (`kmsplan.aws.inflight`).
        With `session` (another AwsClients' of the same identity), its credentials are used as
        they are: `profile` and `role` were resolved when it was made.
        """
        if parallelism < 1:
            raise ValueError(f"parallelism must be at least 1, got {parallelism}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        resolved = session is not None
        if session is None:
            with aws_errors("configure AWS session"):
                session = boto3.session.Session(profile_name=profile)
        # botocore reads AWS_DEFAULT_REGION and the profile, but not AWS_REGION (the variable
        # the other AWS SDKs and the CLI v2 use); honour both, AWS_REGION first.
        resolved_region = region or os.environ.get("AWS_REGION") or session.region_name
        if not resolved_region:
            raise KmsplanError(NO_REGION_MESSAGE)
        if role is not None and not resolved:
            session = assume(
                session,
                role,
                region=resolved_region,
                endpoint_url=endpoint_url,
                session_name=role.session_name or session_name,
                inflight=inflight,
            )
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

        hook = _rate_limit_hook(limiter, inflight)
        adapt = _adapt_rate_hook(limiter, inflight)
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
            client.meta.events.register("before-parse", _answer_check(client.meta.endpoint_url))
            client.meta.events.register("response-received", adapt)
            if inflight is not None:
                client.meta.events.register("after-call-error", _leave(inflight))
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
            profile=profile,
            role=role,
            session_name=session_name,
            inflight=inflight,
            session=session,
        )

    def for_region(self, region: str) -> AwsClients:
        """Clients of the same profile, role and endpoint in another Region (a replica's),
        with that Region's rate limiter: each Region has its own request quotas. A run's
        clients come from its pool (`regional`); others are created here."""
        if region == self.region:
            return self
        if self.regional is not None:
            return self.regional(region)
        return AwsClients.create(
            profile=self.profile,
            region=region,
            endpoint_url=self.endpoint_url,
            parallelism=self.parallelism,
            role=self.role,
            session_name=self.session_name,
            inflight=self.inflight,
            session=self.session,
        )

    def call(self, client: BaseClient, operation: str, **params: Any) -> dict[str, Any]:
        """`call(client, operation, **params)`, for callers holding an AwsClients."""
        return call(client, operation, **params)


def assume(
    session: boto3.session.Session,
    role: Role,
    *,
    region: str,
    endpoint_url: str | None,
    session_name: str,
    inflight: InFlight | None = None,
) -> boto3.session.Session:
    """A session with the credentials of `role`, assumed (STS AssumeRole) with those of
    `session`, and assumed again before they expire: a long run never outlives them.

    When `session` already is a session of that role (a CI job that assumed it itself), it
    is used as it is. With `inflight`, its STS requests count against that budget too.
    """

    def counted(client: Any) -> Any:
        if inflight is not None:
            client.meta.events.register("before-send", lambda **_: inflight.enter())
            client.meta.events.register("response-received", lambda **_: inflight.leave())
            client.meta.events.register("after-call-error", _leave(inflight))
        return client

    sts = counted(session.client("sts", region_name=region, endpoint_url=endpoint_url))
    with aws_errors("GetCallerIdentity"), _parser_failures(sts, "GetCallerIdentity"):
        caller = str(sts.get_caller_identity().get("Arn", ""))
    if is_session_of(caller, role.arn):
        return session
    extra: dict[str, Any] = {"RoleSessionName": session_name}
    if role.external_id is not None:
        extra["ExternalId"] = role.external_id

    def sts_client(service_name: str, **kwargs: Any) -> Any:
        base: Any = session
        return counted(
            base.client(service_name, region_name=region, endpoint_url=endpoint_url, **kwargs)
        )

    source = session.get_credentials()
    if source is None:
        raise KmsplanError(f"AssumeRole {role.arn}: no AWS credentials to assume it with")
    fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
        client_creator=sts_client,
        source_credentials=source,
        role_arn=role.arn,
        extra_args=extra,
    )
    # Assumed now, so that a refused role is said at once and as such.
    with aws_errors(f"AssumeRole {role.arn}"):
        first = fetcher.fetch_credentials()
    credentials = botocore.credentials.RefreshableCredentials.create_from_metadata(
        metadata=first, refresh_using=fetcher.fetch_credentials, method="assume-role"
    )
    core = botocore.session.Session()
    core.register_component(
        "credential_provider", botocore.credentials.CredentialResolver([_Assumed(credentials)])
    )
    return boto3.session.Session(botocore_session=core, region_name=region)


class _Assumed(botocore.credentials.CredentialProvider):
    """The one source of a role session's credentials."""

    METHOD = "assume-role"

    def __init__(self, credentials: botocore.credentials.Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> botocore.credentials.Credentials:
        return self._credentials


def is_session_of(caller_arn: str, role_arn: str) -> bool:
    """Whether `caller_arn` (``arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION``) is a session
    of `role_arn` (``arn:aws:iam::ACCOUNT:role/PATH/NAME``)."""
    caller, role = caller_arn.split(":", 5), role_arn.split(":", 5)
    if len(caller) != 6 or len(role) != 6 or caller[4] != role[4]:
        return False
    kind, _, rest = caller[5].partition("/")
    return kind == "assumed-role" and rest.split("/")[0] == role[5].rsplit("/", 1)[-1]


def _rate_limit_hook(limiter: RateLimiter, inflight: InFlight | None) -> Callable[..., None]:
    def before_send(event_name: str = "", **_: Any) -> None:
        # event_name is "before-send.<service-id>.<Operation>".
        limiter.acquire(event_name.rsplit(".", 1)[-1])
        if inflight is not None:
            inflight.enter()  # after the quota wait: see kmsplan.aws.inflight

    return before_send


def _leave(inflight: InFlight) -> Callable[..., None]:
    def after_call_error(**_: Any) -> None:
        inflight.leave()

    return after_call_error


def _adapt_rate_hook(limiter: RateLimiter, inflight: InFlight | None) -> Callable[..., None]:
    def response_received(
        event_name: str = "",
        response_dict: Mapping[str, Any] | None = None,
        parsed_response: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> None:
        if inflight is not None:
            inflight.leave()
        if response_dict is None:
            return  # no answer (a connection error): nothing learnt about the quota
        # event_name is "response-received.<service-id>.<Operation>".
        operation = event_name.rsplit(".", 1)[-1]
        status = int(response_dict.get("status_code") or 0)
        error = (parsed_response or {}).get("Error") or {}
        if is_throttling(str(error.get("Code") or ""), status):
            limiter.throttled(operation)
        elif status < 500:
            limiter.succeeded(operation)

    return response_received


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
    except NotAnAwsAnswer as exc:
        raise KmsplanError(f"{operation}: {exc}") from None
    except botocore.parsers.ResponseParserError as exc:
        raise KmsplanError(f"{operation}: {_not_aws(None, _first_line(exc))}") from None


ENDPOINT_HINT = "check --endpoint-url, AWS_ENDPOINT_URL* and any proxy in between"


class NotAnAwsAnswer(Exception):
    """An endpoint answered, but not as AWS answers (HTML, garbage, a wrong shape)."""


def _not_aws(endpoint: str | None, what: str) -> str:
    where = f"the endpoint {endpoint}" if endpoint else "the endpoint"
    return f"{where} did not answer like AWS ({what}); {ENDPOINT_HINT}"


def _first_line(exc: BaseException, limit: int = 120) -> str:
    """The start of an exception's message: botocore's parser errors quote the whole body."""
    text = str(exc).strip().split("\n", 1)[0].removesuffix(":")
    text = text.removesuffix(" Further retries may succeed").rstrip(",. ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


_JSON_PROTOCOLS = frozenset({"json", "rest-json"})


def _answer_check(endpoint: str | None) -> Callable[..., None]:
    """A `before-parse` hook refusing a successful answer that is not an AWS answer.

    botocore takes any 2xx JSON-protocol body that is not JSON for an empty answer (a proxy's
    login page would read as "no keys"); an HTML page is never an AWS answer either. Error
    answers are left to botocore (they become ClientErrors: `error_from_client_error`).
    """

    def before_parse(operation_model: Any = None, response_dict: Any = None, **_: Any) -> None:
        if operation_model is None or not isinstance(response_dict, dict):
            return
        status = int(response_dict.get("status_code") or 0)
        body = response_dict.get("body")
        if not 200 <= status < 300 or not isinstance(body, bytes):
            return  # errors are botocore's; no call kmsplan makes answers with a stream
        # Content types prove nothing: emulators label their JSON text/html.
        if body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
            raise NotAnAwsAnswer(_not_aws(endpoint, f"an HTML page with HTTP {status}"))
        # The protocol botocore parses with (newer botocore may pick another than the model's).
        protocol = getattr(operation_model.service_model, "resolved_protocol", None)
        if (protocol or operation_model.metadata.get("protocol")) not in _JSON_PROTOCOLS:
            return  # XML: botocore's parser refuses what is not the operation's answer
        output = operation_model.output_shape
        expects_fields = output is not None and bool(output.members)
        if not body.strip():
            if expects_fields:
                raise NotAnAwsAnswer(_not_aws(endpoint, f"an empty answer with HTTP {status}"))
            return
        try:
            value = json.loads(body)
        except ValueError:
            raise NotAnAwsAnswer(_not_aws(endpoint, f"not JSON, with HTTP {status}")) from None
        if expects_fields and not isinstance(value, dict):
            raise NotAnAwsAnswer(_not_aws(endpoint, f"JSON that is not an object, HTTP {status}"))

    return before_parse


def require(
    answer: Mapping[str, Any], operation: str, name: str, *, endpoint: str | None = None
) -> Any:
    """`answer[name]`, or a KmsplanError naming the field an AWS answer always carries."""
    value = answer.get(name) if isinstance(answer, Mapping) else None
    if value is None:
        raise KmsplanError(f"{operation}: {_not_aws(endpoint, f'its answer has no {name}')}")
    return value


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
    with aws_errors(operation), _parser_failures(client, operation):
        response: dict[str, Any] = method(**params)
    return response


@contextlib.contextmanager
def _parser_failures(client: BaseClient, operation: str) -> Iterator[None]:
    """botocore's parsers meet some malformed answers with a bare KeyError (an XML answer
    without the operation's result element) or TypeError; only botocore runs in the block."""
    try:
        yield
    except botocore.parsers.ResponseParserError as exc:
        what = _first_line(exc)
        raise KmsplanError(f"{operation}: {_not_aws(client.meta.endpoint_url, what)}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if isinstance(exc, botocore.exceptions.BotoCoreError):
            raise
        what = f"{type(exc).__name__} while reading its answer: {_first_line(exc, 60)}"
        raise KmsplanError(f"{operation}: {_not_aws(client.meta.endpoint_url, what)}") from None


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
    with aws_errors(operation), _parser_failures(client, operation):
        if not client.can_paginate(method):
            answer = call(client, operation, **params)
            items.extend(_page_items(answer, operation, result_key, client))
            return items
        config = {"PageSize": page_size} if page_size else {}
        pages = client.get_paginator(method).paginate(**params, PaginationConfig=config)
        for page in pages:
            items.extend(_page_items(page, operation, result_key, client))
    return items


def _page_items(
    page: Mapping[str, Any], operation: str, result_key: str, client: BaseClient
) -> list[Any]:
    """A page's items. AWS lists an empty result too, so an answer without the list is not
    "nothing" but not AWS's answer (a plan built on it would create what exists)."""
    items: list[Any] = require(page, operation, result_key, endpoint=client.meta.endpoint_url)
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
    endpoint = clients.sts.meta.endpoint_url
    account = require(answer, "GetCallerIdentity", "Account", endpoint=endpoint)
    return str(account), str(require(answer, "GetCallerIdentity", "Arn", endpoint=endpoint))
