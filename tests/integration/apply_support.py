"""Helpers for apply tests against the moto server: run the CLI in-process, write manifests,
inspect what KMS holds, and inject failures into the clients kmsplan creates."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
from botocore.awsrequest import AWSResponse

from kmsplan.apply import WRITE_OPERATIONS
from kmsplan.aws.client import AwsClients
from kmsplan.cli import main

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def kmsplan(capsys: pytest.CaptureFixture[str], endpoint: str, *args: str) -> tuple[int, str, str]:
    """Run `kmsplan ARGS --endpoint-url ENDPOINT` in this process: (exit code, out, err)."""
    capsys.readouterr()
    code = main([*args, "--endpoint-url", endpoint])
    out, err = capsys.readouterr()
    return code, out, err


def write_manifest(path: Path, stack: str, keys: dict[str, Any], **top: Any) -> Path:
    document = {"version": 1, "stack": stack, **top, "keys": keys}
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")  # JSON is YAML
    return path


def admin_policy(*extra: dict[str, Any]) -> dict[str, Any]:
    """A key policy that lets the account administer the key, then the `extra` statements."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdmin",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT},
                "Action": "kms:*",
                "Resource": "*",
            },
            *extra,
        ],
    }


def client(endpoint: str, service: str = "kms") -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


def create_role(endpoint: str, name: str) -> str:
    trust = {"Version": "2012-10-17", "Statement": []}
    role = client(endpoint, "iam").create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(trust)
    )
    return str(role["Role"]["Arn"])


def tags_of(kms: Any, key_id: str) -> dict[str, str]:
    return {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}


def stack_keys(endpoint: str, stack: str) -> dict[str, list[dict[str, Any]]]:
    """Logical name -> metadata of every key tagged into `stack` (duplicates show as 2+)."""
    kms = client(endpoint)
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in kms.list_keys()["Keys"]:
        tags = tags_of(kms, entry["KeyId"])
        if tags.get("kmsplan:stack") == stack:
            metadata = kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]
            found.setdefault(tags["kmsplan:key"], []).append(metadata)
    return found


def key_id(endpoint: str, stack: str, name: str) -> str:
    (metadata,) = stack_keys(endpoint, stack)[name]
    return str(metadata["KeyId"])


def aliases(endpoint: str) -> dict[str, str]:
    listed = client(endpoint).list_aliases()["Aliases"]
    return {a["AliasName"]: a.get("TargetKeyId", "") for a in listed if "TargetKeyId" in a}


def grant_names(endpoint: str, key: str) -> list[str]:
    return sorted(g.get("Name", "") for g in client(endpoint).list_grants(KeyId=key)["Grants"])


# ---- failure injection ------------------------------------------------------------------


class SimulatedCrash(BaseException):
    """The process dies: not an error kmsplan could catch and handle."""


def _operation(event_name: str) -> str:
    return event_name.rsplit(".", 1)[-1]


@contextmanager
def hooked_clients(
    monkeypatch: pytest.MonkeyPatch,
    install: Callable[[Any], None],
    *,
    client_names: tuple[str, ...] = ("kms",),
) -> Iterator[None]:
    """Every AwsClients created inside the block gets `install(client)` called on its
    clients named `client_names` (default: the KMS client the applier writes with)."""
    original = AwsClients.create

    def create(cls: type[AwsClients], **kwargs: Any) -> AwsClients:
        clients = original(**kwargs)
        for name in client_names:
            install(getattr(clients, name))
        return clients

    with monkeypatch.context() as patch:
        patch.setattr(AwsClients, "create", classmethod(create))
        yield


class MutatingCallCounter:
    """Counts KMS write requests as they are sent; the k-th one is the target."""

    def __init__(self, k: int | None = None) -> None:
        self.k = k
        self.seen = 0
        # The applier's worker threads send requests concurrently: no count may be lost.
        self._lock = threading.Lock()

    def next_is_target(self, event_name: str) -> bool:
        if _operation(event_name) not in WRITE_OPERATIONS:
            return False
        with self._lock:
            self.seen += 1
            return self.seen == self.k


def crash_after(counter: MutatingCallCounter) -> Callable[[Any], None]:
    """The k-th write succeeds in KMS, then the process dies before learning it."""

    def install(kms: Any) -> None:
        def after_call(event_name: str, **_: Any) -> None:
            if counter.next_is_target(event_name):
                raise SimulatedCrash(f"crash after {_operation(event_name)}")

        kms.meta.events.register("after-call.kms", after_call)

    return install


def _answer(status: int, body: bytes) -> AWSResponse:
    return AWSResponse("http://127.0.0.1/", status, {}, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


INTERNAL_ERROR = b'{"__type": "KMSInternalException", "message": "injected"}'
THROTTLED = b'{"__type": "ThrottlingException", "message": "Rate exceeded (injected)"}'


def server_error_at(counter: MutatingCallCounter, *, executed: bool) -> Callable[[Any], None]:
    """The k-th write is answered HTTP 500; with `executed` it first really reaches KMS (the
    answer is lost on the way back), otherwise KMS never sees it."""
    http = urllib3.PoolManager()

    def install(kms: Any) -> None:
        def before_send(event_name: str, request: Any, **_: Any) -> AWSResponse | None:
            if not counter.next_is_target(event_name):
                return None
            if executed:
                http.request(
                    request.method, request.url, body=request.body, headers=dict(request.headers)
                )
            return _answer(500, INTERNAL_ERROR)

        kms.meta.events.register_first("before-send.kms", before_send)

    return install


def throttle(fraction: float, seed: int, seen: list[str]) -> Callable[[Any], None]:
    """Answer ThrottlingException to a seeded-random `fraction` of all KMS requests."""
    rng = random.Random(seed)

    def install(kms: Any) -> None:
        def before_send(event_name: str, **_: Any) -> AWSResponse | None:
            if rng.random() < fraction:
                seen.append(_operation(event_name))
                return _answer(400, THROTTLED)
            return None

        kms.meta.events.register_first("before-send.kms", before_send)

    return install


def key_last_used(timestamp: str | None) -> Callable[[Any], None]:
    """Answer GetKeyLastUsage (which moto lacks) as real KMS would: last used at `timestamp`
    (ISO 8601), or never used since tracking started (None)."""

    def install(kms: Any) -> None:
        def before_send(event_name: str, **_: Any) -> AWSResponse | None:
            if _operation(event_name) != "GetKeyLastUsage":
                return None
            answer: dict[str, Any] = {
                "TrackingStartDate": 1_700_000_000,
                "KeyCreationDate": 1_700_000_100,
            }
            if timestamp is not None:
                answer["KeyLastUsage"] = {"Operation": "Decrypt", "Timestamp": timestamp}
            return _answer(200, json.dumps(answer).encode())

        kms.meta.events.register_first("before-send.kms", before_send)

    return install


def deny(operation: str) -> Callable[[Any], None]:
    """Answer every `operation` request with AccessDeniedException (KMS never sees it)."""
    body = b'{"__type": "AccessDeniedException", "message": "not allowed (injected)"}'

    def install(kms: Any) -> None:
        def before_send(event_name: str, **_: Any) -> AWSResponse | None:
            return _answer(400, body) if _operation(event_name) == operation else None

        kms.meta.events.register_first("before-send.kms", before_send)

    return install
