"""The applier's port to KMS: make one call, answer in kmsplan's own terms.

`Writer` is the whole interface the applier (kmsplan.apply) writes through: one KMS call, by
operation name and parameters, returning the answer or raising one of kmsplan's errors:

- `KmsCallError`: KMS answered with an error (operation, code, message, request id);
  `Throttled` when that error says the request quota was exceeded — the request was not
  executed, so it is always safe to make again;
- `AmbiguousOutcome`: the answer to a call that is not idempotent (CreateKey, CreateGrant) was
  lost — HTTP 5xx, a timeout, a dropped connection — so KMS may or may not have acted;
- `RequestFailed`: the request got no answer at all (connection errors that outlived botocore's
  retries), an answer that is not an AWS answer (an HTML page, garbage), or was never sent
  (invalid parameters). For CreateKey and CreateGrant an answer that is not an AWS answer is
  an `AmbiguousOutcome` instead: the call may have reached KMS.

`KmsWriter` is the boto3-backed implementation, and the only place that knows botocore's
exceptions and event hooks. On its client it installs two `needs-retry` hooks:

- never let botocore blindly retry CreateKey or CreateGrant: if such an answer is lost, KMS may
  or may not have created the key or grant, and a retry would create a second one. The applier
  looks the resource up before trying again;
- leave throttling to the applier: a throttled answer is returned at once (as `Throttled`)
  instead of being retried by botocore with its bounded attempts. The client's adaptive rate
  limiter has already lowered that API's rate (kmsplan.aws.ratelimit); the applier reports the
  throttling and calls again, until the apply's time budget runs out.

Other transient failures (HTTP 5xx, connection errors on idempotent calls) are still retried by
botocore.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import botocore.exceptions
import botocore.parsers
from botocore import xform_name

from kmsplan.aws.client import NotAnAwsAnswer
from kmsplan.aws.quotas import is_throttling
from kmsplan.errors import AwsError, KmsplanError
from kmsplan.model import Placement

NON_IDEMPOTENT_OPERATIONS = ("CreateKey", "CreateGrant", "ReplicateKey")


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful KMS answer: its body (JSON-shaped, without transport metadata) and the
    request id KMS gave it."""

    body: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None


class Writer(Protocol):
    """Makes one KMS call in one account and Region."""

    def call(self, operation: str, params: Mapping[str, Any]) -> Answer:
        """Call `operation` ("CreateKey") with `params`; raises KmsCallError, Throttled,
        AmbiguousOutcome or RequestFailed."""
        ...


class KmsCallError(AwsError):
    """KMS answered a call with an error."""

    def __init__(
        self, operation: str, code: str, message: str, request_id: str | None = None
    ) -> None:
        super().__init__(operation, code, message)
        self.request_id = request_id


class Throttled(KmsCallError):
    """KMS refused the call because its request quota was exceeded; nothing was executed."""


class AmbiguousOutcome(KmsplanError):
    """A non-idempotent call may or may not have taken effect."""

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(f"{operation}: outcome unknown ({detail})")


class RequestFailed(KmsplanError):
    """A call got no answer (connection errors) or could not be sent (invalid parameters).
    `reason` names what went wrong (botocore's exception class, e.g. EndpointConnectionError)."""

    def __init__(self, operation: str, reason: str, message: str) -> None:
        self.operation = operation
        self.reason = reason
        self.message = message
        super().__init__(f"{operation}: {reason}: {message}")


class KmsWriter:
    """A `Writer` over a boto3 KMS client (thread-safe, like the client)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        install_hooks(client)

    def call(self, operation: str, params: Mapping[str, Any]) -> Answer:
        method = getattr(self._client, xform_name(operation))
        try:
            response: dict[str, Any] = method(**params)
        except _ThrottledAnswer as exc:
            raise Throttled(operation, exc.code, exc.message, exc.request_id) from None
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise KmsCallError(
                operation,
                str(error.get("Code") or "Unknown"),
                str(error.get("Message") or ""),
                _request_id(exc.response),
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise RequestFailed(operation, type(exc).__name__, str(exc)) from exc
        except (NotAnAwsAnswer, botocore.parsers.ResponseParserError) as exc:
            # botocore's parser errors quote the whole body: its first line says enough.
            message = str(exc).strip().split("\n", 1)[0]
            if operation in NON_IDEMPOTENT_OPERATIONS:
                raise AmbiguousOutcome(operation, f"{type(exc).__name__}: {message}") from exc
            raise RequestFailed(operation, "NotAnAwsAnswer", message) from exc
        request_id = _request_id(response)
        body = {name: value for name, value in response.items() if name != "ResponseMetadata"}
        return Answer(body=body, request_id=request_id)


def writers_for(clients: Mapping[Placement, Any]) -> Callable[[Placement], Writer]:
    """The writer of each placement, from a boto3 KMS client per placement; a placement
    without a client is a KmsplanError (asked for before the first write)."""
    writers = {placement: KmsWriter(client) for placement, client in clients.items()}

    def writer(placement: Placement) -> Writer:
        found = writers.get(placement)
        if found is None:
            known = ", ".join(str(p) for p in writers) or "none"
            raise KmsplanError(
                f"no KMS client for account/Region {placement} (this run has: {known})"
            )
        return found

    return writer


# ---- botocore hooks ----------------------------------------------------------------------


class _ThrottledAnswer(Exception):
    """Raised inside botocore's retry decision to hand a throttled answer to `KmsWriter.call`
    without botocore retrying it."""

    def __init__(self, code: str, message: str, request_id: str | None) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        super().__init__(f"{code}: {message}")


def install_hooks(client: Any) -> None:
    """Register the writer's hooks on a boto3 KMS client (idempotent: once per client)."""
    events = client.meta.events
    for operation in NON_IDEMPOTENT_OPERATIONS:
        events.register_first(
            f"needs-retry.kms.{operation}",
            _refuse_ambiguous_retry,
            unique_id=f"kmsplan-no-ambiguous-retry-{operation}",
        )
    # Registered first on the node botocore's own retry handler uses: it runs before that
    # handler, which therefore never sees (nor spends retry quota on) a throttled answer.
    events.register_first(
        "needs-retry.kms", _hand_throttling_to_the_caller, unique_id="kmsplan-throttling"
    )


def _refuse_ambiguous_retry(
    response: Any = None, caught_exception: Any = None, operation: Any = None, **_: Any
) -> None:
    name = getattr(operation, "name", "call")
    if caught_exception is not None:
        raise AmbiguousOutcome(name, f"{type(caught_exception).__name__}: {caught_exception}")
    if response is None:
        return None
    http_response, parsed = response
    status = int(getattr(http_response, "status_code", 0) or 0)
    if status >= 500:
        code = parsed.get("Error", {}).get("Code", "") if isinstance(parsed, dict) else ""
        raise AmbiguousOutcome(name, f"HTTP {status} {code}".strip())
    # Anything else (success, throttling, a definite 4xx error) is left to the other hooks.
    return None


def _hand_throttling_to_the_caller(response: Any = None, **_: Any) -> None:
    if response is None:
        return None
    http_response, parsed = response
    status = int(getattr(http_response, "status_code", 0) or 0)
    error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
    code = str(error.get("Code") or "")
    if not is_throttling(code, status):
        return None
    raise _ThrottledAnswer(
        code or f"HTTP {status}", str(error.get("Message") or ""), _request_id(parsed)
    )


def _request_id(response: Mapping[str, Any]) -> str | None:
    metadata = response.get("ResponseMetadata") or {}
    value = metadata.get("RequestId")
    return str(value) if value else None
