"""The per-operation rate limiter, on a fake clock: tests assert the waits it asks for."""

from __future__ import annotations

import math
import threading

import pytest

from kmsplan.aws.quotas import DEFAULT_QUOTAS, merged_quotas
from kmsplan.aws.ratelimit import RateLimiter


class FakeClock:
    """A clock that only moves when someone sleeps (or the test advances it)."""

    def __init__(self, *, advance_on_sleep: bool = True) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._advance_on_sleep = advance_on_sleep
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self._advance_on_sleep:
                self.now += seconds


def limiter(quotas: dict[str, float], clock: FakeClock, **kwargs: float) -> RateLimiter:
    return RateLimiter(quotas, clock=clock.time, sleep=clock.sleep, **kwargs)


def test_burst_of_one_second_of_quota_then_steady_rate() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": 5}, clock)
    for _ in range(5):
        rl.acquire("CreateKey")
    assert clock.sleeps == []  # the burst: 1 s worth of the quota
    for _ in range(3):
        rl.acquire("CreateKey")
    assert clock.sleeps == pytest.approx([0.2, 0.2, 0.2])
    assert rl.waited() == {"CreateKey": pytest.approx(0.6)}


def test_steady_rate_never_exceeds_the_quota_over_any_long_run() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": 5}, clock)
    start = clock.now
    for _ in range(105):
        rl.acquire("CreateKey")
    # 5 free (burst) + 100 at 5/s: exactly 20 s of waiting, not less.
    assert clock.now - start == pytest.approx(20.0)


def test_bucket_refills_while_idle_but_not_beyond_the_burst() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": 5}, clock)
    for _ in range(5):
        rl.acquire("CreateKey")
    clock.now += 3600  # idle for an hour: still only one second's worth of burst
    for _ in range(6):
        rl.acquire("CreateKey")
    assert clock.sleeps == pytest.approx([0.2])


def test_operations_have_independent_buckets() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": 1, "CreateAlias": 1}, clock)
    rl.acquire("CreateKey")
    rl.acquire("CreateAlias")
    assert clock.sleeps == []
    rl.acquire("CreateKey")
    assert clock.sleeps == pytest.approx([1.0])


def test_unknown_and_infinite_operations_are_unlimited() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": math.inf}, clock)
    for _ in range(1000):
        rl.acquire("CreateKey")
        rl.acquire("SomethingElse")
    assert clock.sleeps == []
    assert rl.rate("CreateKey") is None
    assert rl.rate("SomethingElse") is None


def test_headroom_scales_the_rate() -> None:
    clock = FakeClock()
    rl = limiter({"PutKeyPolicy": 10}, clock, headroom=0.5)
    assert rl.rate("PutKeyPolicy") == 5
    for _ in range(6):
        rl.acquire("PutKeyPolicy")
    assert clock.sleeps == pytest.approx([0.2])


def test_quota_below_one_per_second_still_allows_one_call_then_spaces_them() -> None:
    clock = FakeClock()
    rl = limiter({"Slow": 0.5}, clock)
    rl.acquire("Slow")
    rl.acquire("Slow")
    assert clock.sleeps == pytest.approx([2.0])


def test_concurrent_callers_get_distinct_slots() -> None:
    # The clock never moves: every caller's reservation is visible in the waits it was given.
    clock = FakeClock(advance_on_sleep=False)
    rl = limiter({"CreateGrant": 50}, clock)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            rl.acquire("CreateGrant")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 200 calls: 50 in the burst, then 150 each promised its own 1/50 s slot.
    assert sorted(clock.sleeps) == pytest.approx([n / 50 for n in range(1, 151)])


@pytest.mark.parametrize("bad", [0, -1])
def test_non_positive_quota_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="quota for CreateKey must be positive"):
        RateLimiter({"CreateKey": bad})


def test_non_positive_headroom_is_rejected() -> None:
    with pytest.raises(ValueError, match="headroom must be positive"):
        RateLimiter({}, headroom=0)


def test_default_quotas_match_the_documented_kms_values() -> None:
    assert DEFAULT_QUOTAS["CreateKey"] == 5
    assert DEFAULT_QUOTAS["ListGrants"] == 100
    assert DEFAULT_QUOTAS["DescribeKey"] == 2000
    assert DEFAULT_QUOTAS["GetResources"] == 15
    assert DEFAULT_QUOTAS["ScheduleKeyDeletion"] == 15
    assert DEFAULT_QUOTAS["GetKeyLastUsage"] == 5


def test_overrides_replace_defaults_without_touching_them() -> None:
    quotas = merged_quotas({"CreateKey": 50, "ListGrants": math.inf})
    assert quotas["CreateKey"] == 50
    assert math.isinf(quotas["ListGrants"])
    assert DEFAULT_QUOTAS["CreateKey"] == 5


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (0, "must be positive"),
        (-3, "must be positive"),
        ("5", "must be a number"),
        (math.nan, "must be a number"),
    ],
)
def test_bad_override_is_rejected(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"quota for CreateKey {message}"):
        merged_quotas({"CreateKey": bad})  # type: ignore[dict-item]


# ---- adapting to the quota other callers leave (AIMD) ----------------------------------------


def test_a_throttled_answer_lowers_the_rate_and_empties_the_burst() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": 5}, clock)
    rl.throttled("CreateKey")
    assert rl.rate("CreateKey") == pytest.approx(4.0)  # x 0.8
    rl.acquire("CreateKey")
    assert clock.sleeps == pytest.approx([1 / 4.0])  # no burst left: a full interval


def test_throttled_answers_of_requests_sent_before_the_decrease_do_not_lower_it_again() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": 5}, clock)
    for _ in range(4):  # four requests in flight, all throttled at once
        rl.throttled("CreateKey")
    assert rl.rate("CreateKey") == pytest.approx(4.0)
    clock.now += 1 / 4.0  # one interval at the lowered rate later: news again
    rl.throttled("CreateKey")
    assert rl.rate("CreateKey") == pytest.approx(4.0 * 0.8)
    assert rl.throttles() == {"CreateKey": 5}


def test_throttled_calls_paced_at_the_old_rate_do_not_lower_it_again() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": 5}, clock)
    slots: list[float] = []
    for _ in range(8):  # 5 from the burst, 3 more reserved at 5/s: all before any answer
        rl.acquire("CreateKey")
        slots.append(clock.now)
    for _ in range(8):  # every one of them is throttled, long after the first decrease
        rl.throttled("CreateKey")
        clock.now += 1.0
    assert rl.rate("CreateKey") == pytest.approx(4.0)
    rl.acquire("CreateKey")  # a slot at the lowered rate: its throttle is news
    rl.throttled("CreateKey")
    assert rl.rate("CreateKey") == pytest.approx(4.0 * 0.8)


def test_a_caller_waiting_when_the_rate_is_lowered_takes_a_new_slot_at_the_new_rate() -> None:
    clock = FakeClock()
    throttle_once = [True]

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if throttle_once.pop() if throttle_once else False:
            rl.throttled("CreateKey")  # another caller's answer arrives meanwhile

    rl = RateLimiter({"CreateKey": 5}, clock=clock.time, sleep=sleep)
    for _ in range(6):
        rl.acquire("CreateKey")
    # The 6th caller was promised a slot 0.2 s away at 5/s; KMS throttled meanwhile, so it
    # waits a full interval at the lowered rate (4/s) instead of going out as promised.
    assert clock.sleeps == pytest.approx([0.2, 0.25])


def test_answered_calls_probe_the_rate_back_up_additively() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": 5}, clock)
    rl.throttled("CreateKey")
    for _ in range(10):
        rl.succeeded("CreateKey")
    # + 0.25 % of the published quota per answer, not a multiple of the current rate.
    assert rl.rate("CreateKey") == pytest.approx(4.0 + 10 * 0.0125)


def test_the_rate_never_goes_above_the_published_quota() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": 5, "TagResource": 10}, clock, headroom=0.8)
    rl.throttled("CreateKey")
    for _ in range(2000):
        rl.succeeded("CreateKey")
        rl.succeeded("TagResource")
    assert rl.rate("CreateKey") == pytest.approx(4.0)
    assert rl.rate("TagResource") == pytest.approx(8.0)


def test_the_rate_never_goes_below_the_floor() -> None:
    clock = FakeClock()
    rl = limiter({"CreateKey": 5}, clock)
    for _ in range(100):
        rl.throttled("CreateKey")
        clock.now += 1000
    assert rl.rate("CreateKey") == pytest.approx(0.05)  # 1 % of the quota
    rl.acquire("CreateKey")
    rl.acquire("CreateKey")
    assert clock.sleeps[-1] == pytest.approx(20.0)


def test_an_unknown_operation_is_neither_slowed_down_nor_sped_up() -> None:
    rl = limiter({"CreateKey": 5}, FakeClock())
    rl.throttled("SomethingElse")
    rl.succeeded("SomethingElse")
    assert rl.rate("SomethingElse") is None
    assert rl.throttles() == {}


@pytest.mark.parametrize(("left", "slowest"), [(0.1, 1.35), (0.5, 1.1), (1.0, 1.1)])
def test_the_rate_converges_to_what_other_callers_leave_of_the_quota(
    left: float, slowest: float
) -> None:
    # The account's quota is 5/s, of which other callers leave `left`: KMS (a token bucket
    # holding one second of that) throttles anything faster. The limiter starts at 5/s.
    clock = FakeClock()
    rl = limiter({"CreateKey": 5}, clock)
    allowed = 5 * left
    tokens, stamp = max(1.0, allowed), clock.now
    answered = throttled = 0
    start = clock.now
    while answered < 300:
        rl.acquire("CreateKey")
        tokens = min(max(1.0, allowed), tokens + (clock.now - stamp) * allowed)
        stamp = clock.now
        if tokens >= 1:
            tokens -= 1
            answered += 1
            rl.succeeded("CreateKey")
        else:
            throttled += 1
            rl.throttled("CreateKey")
    elapsed = clock.now - start
    # Close to what is left (a bound at the left rate: 300 / allowed), never failing, and
    # throttled on only a small share of the calls.
    assert 300 / allowed <= elapsed + max(1.0, allowed) / allowed <= slowest * 300 / allowed
    assert throttled <= 0.2 * answered
    assert 0.01 * 5 <= rl.rate("CreateKey") <= 1.3 * allowed  # type: ignore[operator]


def test_bad_adaptation_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="decrease"):
        RateLimiter({}, decrease=1.0)
    with pytest.raises(ValueError, match="increase"):
        RateLimiter({}, increase=0)
    with pytest.raises(ValueError, match="min_fraction"):
        RateLimiter({}, min_fraction=0)
