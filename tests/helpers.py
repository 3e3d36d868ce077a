"""Small helpers shared by tests that talk to AWS APIs (moto server or Stubber)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config

REGION = "us-east-1"


def make_client(service: str, endpoint: str) -> Any:
    """A plain boto3 client for test setup against the moto server (no retries on errors)."""
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def make_kms_client(endpoint: str) -> Any:
    return make_client("kms", endpoint)


class CallCounter:
    """Counts API calls (one per call, retries not included) made through the given clients."""

    def __init__(self, *clients: BaseClient) -> None:
        self.calls: Counter[str] = Counter()
        self.params: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        for client in clients:
            client.meta.events.register("before-parameter-build", self._count)

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1
            self.params.append((model.name, dict(params)))

    def __getitem__(self, operation: str) -> int:
        return self.calls[operation]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.params.clear()


# What real KMS refuses on a Disabled key with DisabledException (moto accepts all of them).
REFUSED_ON_DISABLED_KEY = ("CreateGrant", "EnableKeyRotation", "DisableKeyRotation")


def refuse_on_disabled_key(kms: Any, refused: list[str], *, reader: Any = None) -> None:
    """Make `kms` answer those operations on a Disabled key as real KMS does, recording each
    refusal in `refused`. `reader` (default: `kms`) looks up the key's state."""
    lookup = reader if reader is not None else kms

    def before_parameter_build(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name not in REFUSED_ON_DISABLED_KEY:
            return
        key_id = params["KeyId"]
        if lookup.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled":
            refused.append(model.name)
            raise kms.exceptions.DisabledException(
                {"Error": {"Code": "DisabledException", "Message": f"{key_id} is disabled."}},
                model.name,
            )

    kms.meta.events.register("before-parameter-build.kms", before_parameter_build)


# ---- scripted answers ----------------------------------------------------------------------


def http_answer(status: int, body: bytes) -> Any:
    """An HTTP answer as botocore receives it, for a `before-send` hook to return."""
    from botocore.awsrequest import AWSResponse

    return AWSResponse("https://kms.us-east-1.amazonaws.com/", status, {}, _RawBody(body))


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def scripted_kms_client(answers: list[tuple[int, bytes]], sent: list[str]) -> Any:
    """A KMS client (standard retries, 5 attempts) whose requests never leave the process:
    each is answered from `answers` in order, and its operation appended to `sent`."""
    kms = boto3.client(
        "kms",
        region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 5}),
    )

    def answer(request: Any, **_: Any) -> Any:
        sent.append(request.headers["X-Amz-Target"].decode().split(".")[-1])
        status, body = answers.pop(0)
        return http_answer(status, body)

    kms.meta.events.register("before-send.kms", answer)
    return kms
