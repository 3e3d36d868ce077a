"""The applier: the only part of kmsplan that writes to KMS."""

from __future__ import annotations

from kmsplan.apply.calls import WRITE_OPERATIONS, Limiter, Stopped, bare_key_id, grant_matches
from kmsplan.apply.executor import apply_plan, check_plan, dependencies
from kmsplan.apply.result import ApplyEvent, ApplyResult, ChangeOutcome, ChangeStatus, EventKind
from kmsplan.apply.retry import NO_WAIT, RetryPolicy
from kmsplan.aws.writer import AmbiguousOutcome

__all__ = [
    "NO_WAIT",
    "WRITE_OPERATIONS",
    "AmbiguousOutcome",
    "ApplyEvent",
    "ApplyResult",
    "ChangeOutcome",
    "ChangeStatus",
    "EventKind",
    "Limiter",
    "RetryPolicy",
    "Stopped",
    "apply_plan",
    "bare_key_id",
    "check_plan",
    "dependencies",
    "grant_matches",
]
