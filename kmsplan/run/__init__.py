"""The run layer: everything between a command's parsed arguments and the functional core.

A run owns, for one stack: loading the manifests or a saved plan, the AWS credentials and the
clients per placement (`ClientPool`), the identity and the account and Region guards
(`guards`), the stack lock (`lock`), the live read and the plan (`planning`), the saved-plan
checks (`saved`) and the hand-over to the applier (`Run.apply`). Runs of several stacks, each
stack on its own run and all of them sharing one `Budget` (the ``--parallelism`` budget and
a rate limiter per account and Region), are `stacks` (plan, apply) and `linting` (lint).
Commands stay thin: they
parse, open a run (`open_stack`; several stacks or a saved file: `kmsplan.run.stacks`),
render and choose the exit code.
"""

from __future__ import annotations

from kmsplan.run.clients import AwsSettings, ClientPool, Identity
from kmsplan.run.guards import Intent, check_account, check_region, check_region_name
from kmsplan.run.lock import LockOptions, stack_lock
from kmsplan.run.planning import (
    deletion_candidates,
    plan_live,
    plan_stack,
    principals_to_check,
    with_usage,
)
from kmsplan.run.session import (
    Run,
    SavedPlanRun,
    StackRun,
    open_saved,
    open_stack,
    read_saved_plans,
)

__all__ = [
    "AwsSettings",
    "ClientPool",
    "Identity",
    "Intent",
    "LockOptions",
    "Run",
    "SavedPlanRun",
    "StackRun",
    "check_account",
    "check_region",
    "check_region_name",
    "deletion_candidates",
    "open_saved",
    "open_stack",
    "plan_live",
    "plan_stack",
    "principals_to_check",
    "read_saved_plans",
    "stack_lock",
    "with_usage",
]
