"""The request quotas the proxy enforces, as a server would: requests per second per API.

KMS values are the current "Request quotas" page of the KMS Developer Guide (per account and
Region; each API has its own quota, none of the management APIs share one). Operations not
listed here are not rate limited by the proxy (STS GetCallerIdentity and IAM reads: their
quotas are not published per API).
"""

from __future__ import annotations

KMS_QUOTAS: dict[str, float] = {
    "CreateKey": 5,
    "CreateAlias": 5,
    "UpdateAlias": 5,
    "CancelKeyDeletion": 5,
    "EnableKey": 5,
    "DisableKey": 5,
    "DisableKeyRotation": 5,
    "UntagResource": 5,
    "UpdateKeyDescription": 5,
    "ReplicateKey": 5,
    "RotateKeyOnDemand": 5,
    "GetKeyLastUsage": 5,
    "UpdatePrimaryRegion": 5,
    "DeleteAlias": 15,
    "PutKeyPolicy": 15,
    "EnableKeyRotation": 15,
    "ScheduleKeyDeletion": 15,
    "TagResource": 10,
    "CreateGrant": 50,
    "RevokeGrant": 50,
    "RetireGrant": 50,
    "ListGrants": 100,
    "ListKeyRotations": 100,
    "ListKeyPolicies": 100,
    "ListRetirableGrants": 100,
    "ListKeys": 500,
    "ListAliases": 500,
    "GetKeyPolicy": 1000,
    "GetKeyRotationStatus": 1000,
    "DescribeKey": 2000,
    "ListResourceTags": 2000,
    "GetPublicKey": 2000,
}

# Resource Groups Tagging API: GetResources is 15 calls/s (Tag Editor quotas).
TAGGING_QUOTAS: dict[str, float] = {"GetResources": 15}

# Key of every table: "<service>:<Operation>", the form the proxy counts calls in.
REAL_QUOTAS: dict[str, float] = {
    **{f"kms:{op}": rate for op, rate in KMS_QUOTAS.items()},
    **{f"tagging:{op}": rate for op, rate in TAGGING_QUOTAS.items()},
}

WRITE_OPERATIONS = frozenset(
    {
        "CreateKey",
        "CreateAlias",
        "UpdateAlias",
        "DeleteAlias",
        "CancelKeyDeletion",
        "EnableKey",
        "DisableKey",
        "EnableKeyRotation",
        "DisableKeyRotation",
        "TagResource",
        "UntagResource",
        "UpdateKeyDescription",
        "PutKeyPolicy",
        "CreateGrant",
        "RevokeGrant",
        "RetireGrant",
        "ScheduleKeyDeletion",
        "ReplicateKey",
        "RotateKeyOnDemand",
    }
)


def scaled(quotas: dict[str, float], *, read_scale: float, write_scale: float) -> dict[str, float]:
    """The quotas with reads and writes scaled separately (1.0 = KMS's published values)."""
    out: dict[str, float] = {}
    for name, rate in quotas.items():
        op = name.split(":", 1)[1]
        out[name] = rate * (write_scale if op in WRITE_OPERATIONS else read_scale)
    return out


def quota_bound_seconds(calls: dict[str, int], quotas: dict[str, float]) -> tuple[float, str]:
    """max over APIs of calls / quota, and the API that sets it ("" when nothing is limited)."""
    worst, worst_op = 0.0, ""
    for op, n in calls.items():
        rate = quotas.get(op)
        if rate and n / rate > worst:
            worst, worst_op = n / rate, op
    return worst, worst_op
