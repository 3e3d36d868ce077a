"""Where the stack lock goes.

Two runs against the same stack must not interleave: a plan read while another run writes is
stale the moment it is shown, and two appliers racing on one key make neither outcome the one
that was reviewed. Terraform's answer is a state lock; kmsplan's will be a lock per stack and
placement (account and Region), taken here.

The contract, which the run layer already keeps (tests/unit/run/test_run_lifecycle.py):

- taken after the account and Region guards (so a refused run locks nothing) and before the
  first read of live state;
- held through the plan, the approval prompt and every write, released after the last one;
- released on every way out: success, refusal, failure, an exception, Ctrl-C. A lock
  implementation must also turn SIGTERM into an exception while it is held (Python does not
  unwind on SIGTERM by default), so that ``finally`` runs and the lock is released.

Today it is a no-op: kmsplan has no lock store yet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from kmsplan.model import Placement


@contextlib.contextmanager
def stack_lock(stack: str, placement: Placement) -> Iterator[None]:
    """Hold the lock of `stack` in `placement` for the duration of the block (no-op today)."""
    yield
