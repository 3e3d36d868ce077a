"""Client-side, per-operation, adaptive rate limiting.

KMS gives every management API its own request quota (see `kmsplan.aws.quotas`), per account
and Region, shared by every caller in the account. The limiter keeps one token bucket per
operation, shared by every thread that calls it: a burst of at most `burst_seconds` worth of
the current rate, then a steady rate.

The rate adapts to what the account leaves (AIMD, as TCP congestion control and botocore's
adaptive retry mode do):

- it starts at the published quota (`quota * headroom`, the ceiling) and never goes above it;
- a throttled answer (`throttled`) multiplies the operation's rate by `decrease` (0.8),
  empties its burst and cancels the slots promised to callers still waiting (each takes a
  new one at the lowered rate when it wakes), so the next call goes out a full interval at
  the new rate. Answers to
  requests that asked for their slot before the last decrease say nothing new (they were
  paced at the old rate) and do not lower it again, as TCP reduces its window once per loss
  event.
  The thread that reports an answer is the one that acquired the slot for it (a boto3 call
  runs on its caller's thread); without a slot on record, a second decrease waits at least
  one interval at the lowered rate;
- every answer that was not throttled (`succeeded`) adds `increase` (0.25 % of the ceiling)
  back: a slow probe up, so the rate follows the quota other callers leave, up to the ceiling;
- the rate never falls below `min_fraction` (1 %) of the ceiling.

With every other caller quiet nothing is throttled and the limiter runs at the quota. A caller
that finds the bucket empty reserves the next free slot under the lock and sleeps outside it,
so waiting callers neither hold the lock nor spin, and they are served in the order they asked.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

# Multiplicative decrease and additive increase: a gentle decrease (TCP Reno halves, CUBIC
# and botocore's adaptive mode take 0.7) with a slow probe keeps the rate close to what is
# left: with 10 % of a quota left, 80 % of it is used (tests/unit/aws/test_ratelimit.py).
DECREASE = 0.8
INCREASE = 0.0025  # per answered call, as a fraction of the ceiling
MIN_FRACTION = 0.01  # the floor, as a fraction of the ceiling


class _Bucket:
    """A token bucket; `tokens` below zero are slots already promised to waiting callers."""

    __slots__ = (
        "burst_seconds",
        "capacity",
        "ceiling",
        "decreased_at",
        "floor",
        "lock",
        "rate",
        "throttles",
        "tokens",
        "updated_at",
        "waited",
    )

    def __init__(self, *, ceiling: float, floor: float, burst_seconds: float, now: float) -> None:
        self.ceiling = ceiling
        self.floor = floor
        self.burst_seconds = burst_seconds
        self.rate = ceiling
        self.capacity = max(1.0, ceiling * burst_seconds)
        self.tokens = self.capacity
        self.updated_at = now
        self.decreased_at = -math.inf
        self.waited = 0.0
        self.throttles = 0
        self.lock = threading.Lock()

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated_at = now

    def set_rate(self, rate: float) -> None:
        old, self.rate = self.rate, min(self.ceiling, max(self.floor, rate))
        self.capacity = max(1.0, self.rate * self.burst_seconds)
        if self.tokens < 0:
            # Slots already promised keep their times: the last one is still -tokens/rate
            # from now, so later callers queue behind it, not behind a debt re-priced.
            self.tokens *= self.rate / old
        self.tokens = min(self.tokens, self.capacity)


class RateLimiter:
    """Per-operation adaptive token buckets. Thread-safe; unknown operations are not limited.

    `headroom` scales every quota (0.8 uses 80 % of it, leaving room for other callers in the
    account); `burst_seconds` is how much of a second's rate may be used at once after an idle
    period (at least one call). `decrease`, `increase` and `min_fraction` tune the adaptation
    (see the module's docstring). `clock` and `sleep` are injectable so that tests can run on a
    fake clock.
    """

    def __init__(
        self,
        quotas: Mapping[str, float],
        *,
        headroom: float = 1.0,
        burst_seconds: float = 1.0,
        decrease: float = DECREASE,
        increase: float = INCREASE,
        min_fraction: float = MIN_FRACTION,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not headroom > 0:
            raise ValueError(f"headroom must be positive, got {headroom!r}")
        if not burst_seconds > 0:
            raise ValueError(f"burst_seconds must be positive, got {burst_seconds!r}")
        if not 0 < decrease < 1:
            raise ValueError(f"decrease must be between 0 and 1, got {decrease!r}")
        if not increase > 0:
            raise ValueError(f"increase must be positive, got {increase!r}")
        if not 0 < min_fraction <= 1:
            raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction!r}")
        self._clock = clock
        self._sleep = sleep
        self._slots = threading.local()  # operation -> when this thread last asked for a slot
        self._decrease = decrease
        self._increase = increase
        now = clock()
        self._buckets: dict[str, _Bucket] = {}
        for operation, quota in quotas.items():
            if not quota > 0:
                raise ValueError(f"quota for {operation} must be positive, got {quota!r}")
            if math.isinf(quota):
                continue  # explicitly unlimited
            ceiling = quota * headroom
            self._buckets[operation] = _Bucket(
                ceiling=ceiling,
                floor=ceiling * min_fraction,
                burst_seconds=burst_seconds,
                now=now,
            )

    def rate(self, operation: str) -> float | None:
        """The current rate (calls per second) of `operation`, None when unlimited."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            return None
        with bucket.lock:
            return bucket.rate

    def acquire(self, operation: str) -> None:
        """Block until `operation` may be called without exceeding its current rate.

        A caller whose slot was promised before a decrease takes a new one when it wakes: it
        was paced at a rate KMS has just refused."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            return
        while True:
            with bucket.lock:
                now = self._clock()
                bucket.refill(now)
                bucket.tokens -= 1.0
                wait = -bucket.tokens / bucket.rate if bucket.tokens < 0 else 0.0
                bucket.waited += wait
                self._slot_times()[operation] = now  # paced at the rate of this moment
            if wait <= 0:
                return
            self._sleep(wait)
            with bucket.lock:
                if bucket.decreased_at <= now:
                    return

    def throttled(self, operation: str) -> None:
        """AWS answered a call of `operation` with a throttling error: slow down."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            return
        with bucket.lock:
            now = self._clock()
            bucket.refill(now)
            bucket.throttles += 1
            slot = self._slot_times().get(operation)
            if slot is not None:
                if slot <= bucket.decreased_at:
                    return  # paced at the rate before the last decrease
            elif now - bucket.decreased_at < 1.0 / bucket.rate:
                return  # most likely sent before the last decrease took effect
            bucket.set_rate(bucket.rate * self._decrease)
            # No burst, and no promise kept: callers waiting for a slot take a new one.
            bucket.tokens = 0.0
            bucket.decreased_at = now

    def succeeded(self, operation: str) -> None:
        """AWS answered a call of `operation` without throttling it: probe back up."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            return
        with bucket.lock:
            if bucket.rate < bucket.ceiling:
                bucket.refill(self._clock())
                bucket.set_rate(bucket.rate + bucket.ceiling * self._increase)

    def _slot_times(self) -> dict[str, float]:
        slots: dict[str, float] | None = getattr(self._slots, "times", None)
        if slots is None:
            slots = self._slots.times = {}
        return slots

    def waited(self) -> dict[str, float]:
        """Total seconds callers were made to wait, per operation that ever waited."""
        result: dict[str, float] = {}
        for operation, bucket in self._buckets.items():
            with bucket.lock:
                if bucket.waited > 0:
                    result[operation] = bucket.waited
        return result

    def throttles(self) -> dict[str, int]:
        """Throttled answers reported, per operation that was ever throttled."""
        result: dict[str, int] = {}
        for operation, bucket in self._buckets.items():
            with bucket.lock:
                if bucket.throttles:
                    result[operation] = bucket.throttles
        return result
