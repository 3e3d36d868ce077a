"""Envelope encryption with a KMS key: the round trip every KMS user relies on.

1. Ask KMS for a data key (GenerateDataKey, AES_256): it returns the key in plaintext and the
   same key encrypted under the KMS key.
2. Encrypt the data locally with the plaintext data key (AES-256-GCM), then drop that key.
3. Store the ciphertext next to the encrypted data key.
4. To read the data: KMS decrypts the encrypted data key (Decrypt), and the data is
   decrypted locally with it.

These are cryptographic calls, not management writes: they change nothing in KMS.
The encryption context is bound to both the data key (KMS checks it on Decrypt) and the
ciphertext (as AES-GCM associated data).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kmsplan.errors import KmsplanError

NONCE_BYTES = 12  # the AES-GCM standard nonce size
DATA_KEY_SPEC = "AES_256"


def _aesgcm(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise KmsplanError(
            "envelope encryption needs the 'cryptography' package: pip install 'kmsplan[local]'"
        ) from None
    return AESGCM(key)


def _associated_data(context: Mapping[str, str]) -> bytes:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """Encrypted data and everything needed to decrypt it, except the KMS key itself."""

    key_id: str  # the KMS key (ARN) that encrypted the data key
    encrypted_data_key: bytes
    nonce: bytes
    ciphertext: bytes  # AES-GCM output, authentication tag included
    context: Mapping[str, str] = field(default_factory=dict, hash=False)

    def to_json(self) -> str:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        return json.dumps(
            {
                "key_id": self.key_id,
                "encrypted_data_key": b64(self.encrypted_data_key),
                "nonce": b64(self.nonce),
                "ciphertext": b64(self.ciphertext),
                "context": dict(self.context),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Envelope:
        data = json.loads(text)
        return cls(
            key_id=data["key_id"],
            encrypted_data_key=base64.b64decode(data["encrypted_data_key"]),
            nonce=base64.b64decode(data["nonce"]),
            ciphertext=base64.b64decode(data["ciphertext"]),
            context=dict(data.get("context") or {}),
        )


def encrypt(
    kms: Any, key: str, plaintext: bytes, *, context: Mapping[str, str] | None = None
) -> Envelope:
    """Encrypt `plaintext` under a fresh data key protected by the KMS key `key` (id, ARN or
    alias name)."""
    context = dict(context or {})
    params: dict[str, Any] = {"KeyId": key, "KeySpec": DATA_KEY_SPEC}
    if context:
        params["EncryptionContext"] = context
    answer = kms.generate_data_key(**params)
    data_key = bytearray(answer["Plaintext"])
    try:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = _aesgcm(bytes(data_key)).encrypt(nonce, plaintext, _associated_data(context))
    finally:
        # Best effort in Python (copies may exist), but never keep the plaintext key around.
        data_key[:] = bytes(len(data_key))
    return Envelope(
        key_id=str(answer["KeyId"]),
        encrypted_data_key=bytes(answer["CiphertextBlob"]),
        nonce=nonce,
        ciphertext=ciphertext,
        context=context,
    )


def decrypt(kms: Any, envelope: Envelope) -> bytes:
    """KMS decrypts the data key; the data is decrypted locally. Raises KmsplanError if the
    ciphertext or its context was tampered with."""
    params: dict[str, Any] = {
        "CiphertextBlob": envelope.encrypted_data_key,
        "KeyId": envelope.key_id,
    }
    if envelope.context:
        params["EncryptionContext"] = dict(envelope.context)
    answer = kms.decrypt(**params)
    data_key = bytearray(answer["Plaintext"])
    try:
        aad = _associated_data(envelope.context)
        return bytes(_aesgcm(bytes(data_key)).decrypt(envelope.nonce, envelope.ciphertext, aad))
    except Exception as exc:
        if type(exc).__name__ == "InvalidTag":
            raise KmsplanError(
                "envelope decryption failed: the ciphertext or its context was altered"
            ) from None
        raise
    finally:
        data_key[:] = bytes(len(data_key))
