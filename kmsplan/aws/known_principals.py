"""What the stacks of one run learnt about IAM principals: whether a role or user exists.

KMS refuses a key policy or grant that names a same-account IAM role or user that does not
exist, so every plan checks the principals its manifests name (one IAM GetRole or GetUser
each). IAM is global, and an organisation's stacks in one account tend to name the same roles:
a run of many stacks keeps each definite answer (it exists, it does not) per account and
principal, and asks IAM once. An answer IAM could not give (no permission, an error) is not
kept: each stack asks again, and warns of it in its own plan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class KnownPrincipals:
    """Definite answers to "does this IAM principal exist?", by account and ARN."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], bool] = {}
        self._asking: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()

    def answer(self, account_id: str, arn: str, ask: Callable[[], bool | None]) -> bool | None:
        """The answer known for `arn`, else `ask()`'s (kept when definite). While another
        stack is asking about the same principal, wait for its answer instead of asking too."""
        key = (account_id, arn)
        with self._lock:
            if key in self._answers:
                return self._answers[key]
            asking = self._asking.get(key)
            if asking is None:
                self._asking[key] = threading.Event()
        if asking is not None:
            asking.wait()
            with self._lock:
                if key in self._answers:
                    return self._answers[key]
            return ask()  # the other could not tell: ask (and warn) for this stack too
        found: bool | None = None
        try:
            found = ask()
        finally:
            with self._lock:
                done = self._asking.pop(key)
                if found is not None:
                    self._answers[key] = found
            done.set()
        return found
