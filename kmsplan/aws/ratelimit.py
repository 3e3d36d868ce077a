"""Client-side, per-operation rate limiting.

KMS gives every management API its own request quota (see `kmsplan.aws.quotas`), so the
limiter keeps one token bucket per operation: a burst of at most `burst_seconds` worth of the
quota, then a steady rate of `quota * headroom` per second, shared by every thread that calls
the operation.

A caller that finds the bucket empty reserves the next free slot under the lock and sleeps
outside it, so waiting callers neither hold the lock nor spin, and they are served in the
order they asked. Staying under the quota client-side does not make throttling impossible
(other callers in the account share the quota); botocore's retries handle the rest.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping


class _Bucket:
    """A token bucket; `tokens` below zero are slots already promised to waiting callers."""

    __slots__ = ("capacity", "lock", "rate", "tokens", "updated_at", "waited")

    def __init__(self, *, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated_at = now
        self.waited = 0.0
        self.lock = threading.Lock()


class RateLimiter:
    """Per-operation token buckets. Thread-safe; unknown operations are not limited.

    `headroom` scales every quota (0.8 uses 80 % of it, leaving room for other callers in the
    account); `burst_seconds` is how much of a second's quota may be used at once after an
    idle period (at least one call). `clock` and `sleep` are injectable so that tests can run
    on a fake clock.
    """

    def __init__(
        self,
        quotas: Mapping[str, float],
        *,
        headroom: float = 1.0,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not headroom > 0:
            raise ValueError(f"headroom must be positive, got {headroom!r}")
        if not burst_seconds > 0:
            raise ValueError(f"burst_seconds must be positive, got {burst_seconds!r}")
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self._buckets: dict[str, _Bucket] = {}
        for operation, quota in quotas.items():
            if not quota > 0:
                raise ValueError(f"quota for {operation} must be positive, got {quota!r}")
            if math.isinf(quota):
                continue  # explicitly unlimited
            rate = quota * headroom
            self._buckets[operation] = _Bucket(
                rate=rate, capacity=max(1.0, rate * burst_seconds), now=now
            )

    def rate(self, operation: str) -> float | None:
        """The enforced rate (calls per second) of `operation`, None when unlimited."""
        bucket = self._buckets.get(operation)
        return bucket.rate if bucket else None

    def acquire(self, operation: str) -> None:
        """Block until `operation` may be called without exceeding its rate."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            return
        with bucket.lock:
            now = self._clock()
            elapsed = max(0.0, now - bucket.updated_at)
            bucket.tokens = min(bucket.capacity, bucket.tokens + elapsed * bucket.rate)
            bucket.updated_at = now
            bucket.tokens -= 1.0
            wait = -bucket.tokens / bucket.rate if bucket.tokens < 0 else 0.0
            bucket.waited += wait
        if wait > 0:
            self._sleep(wait)

    def waited(self) -> dict[str, float]:
        """Total seconds callers were made to wait, per operation that ever waited."""
        result: dict[str, float] = {}
        for operation, bucket in self._buckets.items():
            with bucket.lock:
                if bucket.waited > 0:
                    result[operation] = bucket.waited
        return result
