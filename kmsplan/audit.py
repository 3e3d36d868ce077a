"""The apply audit log: one JSON line per KMS API call that `kmsplan apply` made.

A line says when, which operation, on which key / alias / grant, the AWS request id (to find
the call in CloudTrail) and whether it worked. It never holds key policies, tags, plaintext,
ciphertext or grant tokens: only identifiers and outcomes.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import IO, Any


class AuditLog:
    """Appends audit lines to an open text stream; safe to use from several threads."""

    def __init__(
        self, stream: IO[str], *, stack: str = "", lock: threading.Lock | None = None
    ) -> None:
        self._stream = stream
        self._lock = lock or threading.Lock()
        self._stack = stack

    def for_stack(self, stack: str) -> AuditLog:
        """The same log, its lines naming `stack`: the log of a run of several stacks."""
        return AuditLog(self._stream, stack=stack, lock=self._lock)

    @classmethod
    @contextmanager
    def open(cls, path: str | os.PathLike[str]) -> Iterator[AuditLog]:
        """Open `path` for appending (created if missing) for the duration of the block."""
        with open(path, "a", encoding="utf-8") as stream:
            yield cls(stream)

    def record(
        self,
        *,
        operation: str,
        outcome: str,
        address: str = "",
        key_id: str | None = None,
        alias: str | None = None,
        grant: str | None = None,
        request_id: str | None = None,
        error_code: str | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            **({"stack": self._stack} if self._stack else {}),
            "operation": operation,
            "outcome": outcome,
        }
        optional = {
            "address": address,
            "key_id": key_id,
            "alias": alias,
            "grant": grant,
            "request_id": request_id,
            "error_code": error_code,
        }
        entry.update({name: value for name, value in optional.items() if value})
        line = json.dumps(entry, sort_keys=False)
        with self._lock:
            self._stream.write(line + "\n")
            # Flushed per line: the log must survive the process dying mid-apply.
            self._stream.flush()
