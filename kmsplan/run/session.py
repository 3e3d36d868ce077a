"""A run: the lifecycle every command that reads live state goes through.

Like Terraform's local backend run, the run layer takes the steps in a fixed order and hands
the command a context to work in; the command parses, calls, renders and picks the exit code.

1. check ``--region`` as the manifest's ``region:`` is checked — before anything is read;
2. load and validate the manifests (every problem is reported before any AWS call), or read
   a saved plan (refused unless its content matches its checksum);
3. the Region guard (`kmsplan.run.guards`): the stack's Region (the manifests' ``region:``, a
   saved plan's Region), else ``--region``, else the standard chain; a ``--region`` that
   contradicts the stack's is refused;
4. the clients of the home placement (`ClientPool`), STS identity, the account guard;
5. the stack lock (`kmsplan.run.lock`) when the command asks for one (`LockOptions`) and the
   stack has one (``--lock``, ``lock:``), held until the block ends: the live read, the plan,
   the approval prompt and every write happen inside it;
6. in the block: `StackRun.plan` / `SavedPlanRun.plan` (which reads live KMS again, checks the
   fingerprint and the gate), `StackRun.live_policies` (lint), then `Run.apply`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from kmsplan.apply import ApplyEvent, ApplyResult, apply_plan
from kmsplan.audit import AuditLog
from kmsplan.aws.client import AwsClients
from kmsplan.aws.reader import read_live, tagged_keys
from kmsplan.aws.writer import KmsWriter
from kmsplan.errors import KmsplanError
from kmsplan.manifest import load, resolve_variables
from kmsplan.model import Stack
from kmsplan.plan import planfile
from kmsplan.plan.types import GateOptions, Plan
from kmsplan.run.clients import AwsSettings, Budget, ClientPool, Identity
from kmsplan.run.guards import Intent, check_account, check_region, check_region_name
from kmsplan.run.lock import LockOptions, lock_for, stack_lock
from kmsplan.run.planning import plan_live
from kmsplan.run.saved import check_fresh, regate, reread


class Run:
    """A run whose guards passed and whose stack lock is held."""

    def __init__(self, pool: ClientPool, identity: Identity) -> None:
        self.pool = pool
        self.identity = identity

    def plan(self, gate: GateOptions, *, now: datetime | None = None) -> Plan:
        """The plan this run applies (`StackRun`, `SavedPlanRun`)."""
        raise NotImplementedError

    @property
    def home_clients(self) -> AwsClients:
        return self.pool.clients(self.identity.home)

    def apply(
        self,
        plan: Plan,
        *,
        on_event: Callable[[ApplyEvent], None],
        audit: AuditLog | None,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> ApplyResult:
        """Run `plan`'s changes through the applier, with the clients of where they go: the
        stack's own account, in the home Region or a replica's. Setting `stop` stops it
        starting calls (another stack's apply was interrupted)."""
        home = self.identity.home
        elsewhere = sorted(
            {
                str(p)
                for p in map(plan.placement_of, plan.changes)
                if p.account_id != home.account_id
            }
        )
        if elsewhere:
            raise KmsplanError(
                f"the plan has changes for {', '.join(elsewhere)}; this kmsplan applies only "
                f"in the stack's own account ({home.account_id}). Nothing was changed"
            )
        clients = self.home_clients
        return apply_plan(
            plan,
            lambda placement: KmsWriter(self.pool.writer(placement)),
            parallelism=clients.parallelism,
            # The clients rate-limit every request they send (retries included).
            limiter=None,
            on_event=on_event,
            audit=audit,
            timeout=timeout,
            # After each CreateKey: a key another run created with the same name meanwhile.
            find_siblings=lambda stack, name: tagged_keys(clients, stack, name),
            stop=stop,
        )


class StackRun(Run):
    """A run for the stack the manifests declare."""

    def __init__(self, pool: ClientPool, identity: Identity, desired: Stack) -> None:
        super().__init__(pool, identity)
        self.desired = desired

    def plan(self, gate: GateOptions, *, now: datetime | None = None) -> Plan:
        """Read live KMS and plan the stack (diff, gate, findings, fingerprint)."""
        return plan_live(self.home_clients, self.desired, gate, identity=self.identity, now=now)

    def live_policies(self) -> tuple[Stack, dict[str, Mapping[str, Any]]]:
        """The stack with `${account_id}`/`${region}` resolved, and the live policy of every
        declared key that exists in KMS (by logical name)."""
        identity = self.identity
        state = read_live(
            self.home_clients, self.desired, identity=(identity.account_id, identity.caller_arn)
        )
        resolved = resolve_variables(self.desired, account_id=state.account_id, region=state.region)
        policies: dict[str, Mapping[str, Any]] = {
            k.name: k.policy for k in state.keys if k.policy is not None
        }
        return resolved, policies


class SavedPlanRun(Run):
    """A run that applies a plan saved by `kmsplan plan --out`."""

    def __init__(self, pool: ClientPool, identity: Identity, path: str, saved: Plan) -> None:
        super().__init__(pool, identity)
        self.path = path
        self.saved = saved

    def plan(self, gate: GateOptions, *, now: datetime | None = None) -> Plan:
        """The saved plan, if live KMS still matches it, judged again by the safety gate
        against what was read now with apply's own flags `gate`."""
        live = reread(self.saved, self.home_clients, self.identity)
        check_fresh(self.path, self.saved, live)
        return regate(self.saved, live, gate, now=now)


@contextlib.contextmanager
def open_stack(
    paths: Sequence[str],
    aws: AwsSettings,
    *,
    intent: Intent,
    lock: LockOptions | None = None,
) -> Iterator[StackRun]:
    """Steps 1-5 for the manifests at `paths`; the block runs under the stack lock."""
    check_region_name(aws.region)
    if lock is not None:
        lock.check()
    with open_loaded(load(list(paths)), aws, intent=intent, lock=lock) as run:
        yield run


@contextlib.contextmanager
def open_loaded(
    desired: Stack,
    aws: AwsSettings,
    *,
    intent: Intent,
    lock: LockOptions | None = None,
    budget: Budget | None = None,
) -> Iterator[StackRun]:
    """Steps 3-5 for a stack already loaded (one of several: `kmsplan.run.stacks`, whose
    stacks share the run's `budget`)."""
    check_region(desired.region, aws.region, intent=intent)
    pool = ClientPool(aws, role=desired.role, session_name=f"kmsplan-{desired.name}", budget=budget)
    identity = pool.connect(desired.region or aws.region)
    check_account(desired.account, identity, intent=intent)
    held = lock_for(lock, desired.lock, caller_arn=identity.caller_arn, aws=aws, role=desired.role)
    with stack_lock(desired.name, identity.home, held):
        yield StackRun(pool, identity, desired)


def read_saved_plans(
    path: str, aws: AwsSettings, *, lock: LockOptions | None = None
) -> tuple[Plan, ...]:
    """Steps 1-2 for a saved file: ``--region`` and ``--lock`` checked, then the plans it
    holds (one per stack; refused unless its content matches its checksum)."""
    check_region_name(aws.region)
    if lock is not None:
        lock.check()
    return planfile.read_saved(path)


@contextlib.contextmanager
def open_saved(
    path: str,
    saved: Plan,
    aws: AwsSettings,
    *,
    lock: LockOptions | None = None,
    budget: Budget | None = None,
) -> Iterator[SavedPlanRun]:
    """Steps 3-5 for a stack's plan saved at `path`. A saved plan names no lock: only
    ``--lock URL`` (`lock`) gives one. It names the stack's role, which the run assumes as a
    run from the manifests does; the account guard checks the plan's account against the
    identity the role gives."""
    check_region_name(saved.region, source="Region in the saved plan")
    check_region(saved.region, aws.region, intent=Intent.SAVED_PLAN)
    pool = ClientPool(aws, role=saved.role, session_name=f"kmsplan-{saved.stack}", budget=budget)
    identity = pool.connect(saved.region)
    check_account(saved.account_id, identity, intent=Intent.SAVED_PLAN)
    held = lock_for(lock, None, caller_arn=identity.caller_arn, aws=aws, role=saved.role)
    with stack_lock(saved.stack, identity.home, held):
        yield SavedPlanRun(pool, identity, path, saved)
