"""Shared fixtures. The local KMS emulator (moto with kmsplan's multi-Region fixes) is started
once per session on 127.0.0.1 (a free port) and reset between tests; integration tests talk to
it over real HTTP through boto3."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator

import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let a test reach real AWS credentials or config."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The local KMS emulator (moto with kmsplan's multi-Region fixes, as `kmsplan local-kms`
    runs it) bound to 127.0.0.1 for the whole session; yields its endpoint URL."""
    from kmsplan.local_kms import local_kms

    with local_kms() as url:
        yield url


@pytest.fixture
def endpoint(moto_server: str) -> str:
    """The moto endpoint, with all of moto's state wiped before the test."""
    req = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    return moto_server
