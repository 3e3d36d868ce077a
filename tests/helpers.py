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
