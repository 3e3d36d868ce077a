"""The run's ``--parallelism`` budget: at most so many requests on the wire at once, whatever
client, stack, account or Region they are for.

One stack's reader and applier bound their own concurrency with their thread pools. When a run
plans or applies several stacks at once, each stack has such pools, and the budget is what
keeps their sum at ``--parallelism``: every client of the run shares one `InFlight`, and each
HTTP attempt holds one of its slots from after its rate-limiter wait until its answer arrives.

A slot is taken after the rate limiter's wait, not before: a stack whose account and Region is
out of quota (its calls waiting in their limiter) holds no slot, so it does not slow the stacks
elsewhere. Retries and their back-off sleeps hold no slot either: botocore sleeps after the
answer.

botocore announces the answer (``response-received``) on every path but a malformed answer,
whose error ends the call (``after-call-error``); the slot is given back on whichever comes
first. Each thread holds at most one slot (a boto3 call runs on its caller's thread, and a
thread makes one call at a time), so giving back twice, or a slot taken on a path that
announced nothing, cannot miscount: the thread's next answer gives it back.
"""

from __future__ import annotations

import threading


class InFlight:
    """A budget of `size` requests in flight, shared by every client that is given it."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"the budget must allow at least 1 request, got {size}")
        self.size = size
        self._slots = threading.Semaphore(size)
        self._held = threading.local()
        self._count_lock = threading.Lock()
        self._in_flight = 0
        self.most = 0  # the most requests seen in flight at once

    def enter(self) -> None:
        """Take a slot for the calling thread's request (wait for one), unless it holds one."""
        if getattr(self._held, "slot", False):
            return
        self._slots.acquire()
        self._held.slot = True
        with self._count_lock:
            self._in_flight += 1
            self.most = max(self.most, self._in_flight)

    def leave(self) -> None:
        """Give back the calling thread's slot, if it holds one."""
        if not getattr(self._held, "slot", False):
            return
        self._held.slot = False
        with self._count_lock:
            self._in_flight -= 1
        self._slots.release()
