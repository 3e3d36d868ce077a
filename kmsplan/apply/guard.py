"""Never let botocore blindly retry a call that is not idempotent.

CreateKey has no client token: if its answer is lost (HTTP 5xx, timeout, dropped connection),
KMS may or may not have created the key, and botocore's automatic retry would create a second
one. The same holds for CreateGrant on emulators that ignore the grant Name. For those two
operations an ambiguous outcome is turned into `AmbiguousOutcome` instead of a retry; the
applier then looks the resource up before trying again. Throttling answers are still retried
by botocore: a throttled request was never executed.
"""

from __future__ import annotations

from typing import Any

NON_IDEMPOTENT_OPERATIONS = ("CreateKey", "CreateGrant")


class AmbiguousOutcome(Exception):
    """A non-idempotent call may or may not have taken effect."""

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(f"{operation}: outcome unknown ({detail})")


def install(client: Any) -> None:
    """Register the guard on a boto3 KMS client (idempotent: registered once per client)."""
    events = client.meta.events
    for operation in NON_IDEMPOTENT_OPERATIONS:
        events.register_first(
            f"needs-retry.kms.{operation}",
            _refuse_ambiguous_retry,
            unique_id=f"kmsplan-no-ambiguous-retry-{operation}",
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
    # Anything else (success, throttling, a definite 4xx error) is left to botocore.
    return None
