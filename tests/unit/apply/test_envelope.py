"""Envelope encryption round trip (in-process moto KMS)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kmsplan import envelope
from kmsplan.errors import KmsplanError

DOCUMENT = b"orders ledger, quarter 3\n" * 10


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        key_id = client.create_key()["KeyMetadata"]["KeyId"]
        client.create_alias(AliasName="alias/docs", TargetKeyId=key_id)
        yield client


def test_round_trip_through_an_alias_and_a_json_file(kms: Any) -> None:
    sealed = envelope.encrypt(kms, "alias/docs", DOCUMENT, context={"doc": "ledger"})
    assert DOCUMENT not in sealed.ciphertext
    assert len(sealed.nonce) == 12
    restored = envelope.decrypt(kms, envelope.Envelope.from_json(sealed.to_json()))
    assert restored == DOCUMENT


def test_the_stored_form_holds_no_plaintext_key_or_data(kms: Any) -> None:
    sealed = envelope.encrypt(kms, "alias/docs", DOCUMENT)
    stored = sealed.to_json()
    assert set(json.loads(stored)) == {
        "key_id",
        "encrypted_data_key",
        "nonce",
        "ciphertext",
        "context",
    }
    assert "ledger" not in stored


def test_altered_ciphertext_is_detected(kms: Any) -> None:
    sealed = envelope.encrypt(kms, "alias/docs", DOCUMENT, context={"doc": "ledger"})
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(KmsplanError) as altered:
        envelope.decrypt(kms, dataclasses.replace(sealed, ciphertext=flipped))
    assert str(altered.value) == (
        "envelope decryption failed: the ciphertext or its context was altered"
    )
