"""Request quotas (requests per second) of the APIs kmsplan calls.

The KMS numbers are the per-account, per-Region request quotas AWS documents
(https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html). AWS raises
them from time to time and accounts can have them adjusted, so they are defaults: pass
overrides through `merged_quotas`. Each KMS management API has its own quota; none is shared
with another, which is why the rate limiter keeps one bucket per operation.

Keys are API operation names exactly as botocore names them ("CreateKey", "GetResources").
An operation that is not listed is not rate limited (botocore's retries still apply).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

# KMS management APIs (requests per second).
KMS_QUOTAS: dict[str, float] = {
    "CancelKeyDeletion": 5,
    "CreateAlias": 5,
    "CreateGrant": 50,
    "CreateKey": 5,
    "DeleteAlias": 15,
    "DescribeKey": 2000,
    "DisableKey": 5,
    "DisableKeyRotation": 5,
    "EnableKey": 5,
    "EnableKeyRotation": 15,
    "GetKeyLastUsage": 5,
    "GetKeyPolicy": 1000,
    "GetKeyRotationStatus": 1000,
    "GetPublicKey": 2000,
    "ListAliases": 500,
    "ListGrants": 100,
    "ListKeyPolicies": 100,
    "ListKeyRotations": 100,
    "ListKeys": 500,
    "ListResourceTags": 2000,
    "ListRetirableGrants": 100,
    "PutKeyPolicy": 15,
    "ReplicateKey": 5,
    "RetireGrant": 50,
    "RevokeGrant": 50,
    "RotateKeyOnDemand": 5,
    "ScheduleKeyDeletion": 15,
    "TagResource": 10,
    "UntagResource": 5,
    "UpdateAlias": 5,
    "UpdateKeyDescription": 5,
    "UpdatePrimaryRegion": 5,
}

# Resource Groups Tagging API: GetResources is documented at 15 calls per second.
TAGGING_QUOTAS: dict[str, float] = {
    "GetResources": 15,
}

# STS and IAM publish no per-operation request quotas for these reads; these values are
# conservative so that checking many principals never gets kmsplan throttled.
STS_QUOTAS: dict[str, float] = {
    "GetCallerIdentity": 50,
}
IAM_QUOTAS: dict[str, float] = {
    "GetRole": 20,
    "GetUser": 20,
}

DEFAULT_QUOTAS: dict[str, float] = {**KMS_QUOTAS, **TAGGING_QUOTAS, **STS_QUOTAS, **IAM_QUOTAS}


def merged_quotas(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """DEFAULT_QUOTAS with `overrides` applied; `math.inf` removes an operation's limit.

    Raises ValueError for a quota that is not a positive number, so that a typo in a
    configured quota cannot silently stop every call of that operation.
    """
    quotas = dict(DEFAULT_QUOTAS)
    for operation, rate in (overrides or {}).items():
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or math.isnan(rate):
            raise ValueError(f"quota for {operation} must be a number, got {rate!r}")
        if rate <= 0:
            raise ValueError(f"quota for {operation} must be positive, got {rate!r}")
        quotas[operation] = float(rate)
    return quotas


# The error codes AWS answers with when a request quota is exceeded (botocore's standard retry
# mode lists the same ones, less LimitExceededException: KMS uses that for resource quotas and
# oversized policies, which waiting does not cure). HTTP 429 means the same without a code.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
    }
)


def is_throttling(code: str, status: int) -> bool:
    """Whether an error answer (its code, its HTTP status) says a request quota was exceeded."""
    return code in THROTTLING_CODES or status == 429
