"""kmsplan's own bounded backoff, for what botocore's retries do not cover.

botocore (standard mode, many attempts) retries 5xx answers and connection errors; throttled
calls are made again by the applier itself (kmsplan.apply.calls), paced by the adaptive rate
limiter and bounded only by the apply's time budget. What botocore cannot know is KMS
eventual consistency: a policy naming a principal IAM created seconds ago
(MalformedPolicyDocumentException about invalid principals), or a key created earlier in the
same run that another KMS host does not know yet (NotFoundException,
KMSInvalidStateException). Those are retried here, with exponential backoff and a bound on
the total time spent waiting. `sleep` is injectable so tests never wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    # IAM principals have been seen rejected for about a minute after creation; terraform
    # waits two minutes for the same case.
    max_total_seconds: float = 120.0
    base_seconds: float = 1.0
    cap_seconds: float = 16.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def delays(self) -> Iterator[float]:
        """Delays to wait between attempts; stops when the time budget is spent."""
        spent = 0.0
        attempt = 0
        while True:
            ceiling = min(self.cap_seconds, self.base_seconds * (2**attempt))
            # Half fixed, half random: always some progress, and concurrent retries spread.
            delay = ceiling / 2 + self.jitter() * ceiling / 2
            if spent + delay > self.max_total_seconds:
                return
            spent += delay
            attempt += 1
            yield delay


NO_WAIT = RetryPolicy(sleep=lambda _seconds: None, jitter=lambda: 0.0)
