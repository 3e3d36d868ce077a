"""Several stacks in one run: each planned and applied on its own, at the same time, a failure
of one never hiding or stopping the others.

Each stack gets its own run (`open_loaded`, or `open_saved` for a stack of a saved plan): its
own role, Region guard, identity, account guard, stack lock, live read, gate and fingerprint.
The stacks of a run share one `Budget`: the ``--parallelism`` requests in flight, all stacks
together, and one rate limiter per account and Region, since KMS's request quotas are per
account and Region. A stack slowed by its account's quotas waits in its own limiter and holds
no share of the budget, so the stacks elsewhere go on at their own pace.

`plan_each` plans the stacks and hands back what each came to. `StackRuns` carries each stack
from its lock through its plan to its apply: every stack is planned (its lock held from before
its live read), then the command shows the plans and asks once for approval, then the stacks
are applied — all at once, or one after another with ``--fail-fast``, which stops at the first
stack that fails. A stack that fails to load, plan or apply is reported with its error and the
others go on; its lock is released when its thread ends.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from kmsplan.apply import ApplyResult, Stopped, check_plan
from kmsplan.errors import ExitCode, KmsplanError
from kmsplan.model import Stack
from kmsplan.plan.serialize import StackStatus
from kmsplan.plan.types import GateOptions, Plan
from kmsplan.run.clients import AwsSettings, Budget
from kmsplan.run.guards import Intent
from kmsplan.run.lock import LockOptions
from kmsplan.run.session import Run, open_loaded, open_saved

INTERRUPTED = (
    "interrupted: no new call was started after the interrupt; the calls made before it stand"
)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True, kw_only=True)
class StackOutcome:
    """What one stack of a run came to: its plan, the error that stopped it (a plan the gate
    blocks keeps its plan and says why it was not applied), and what apply did."""

    stack: Stack
    plan: Plan | None = None
    error: str | None = None
    result: ApplyResult | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or (self.result is not None and not self.result.ok)


def plan_each(
    stacks: Sequence[Stack],
    aws: AwsSettings,
    gate: GateOptions,
    *,
    now: datetime | None = None,
    max_stacks: int | None = None,
    lock: LockOptions | None = None,
) -> list[StackOutcome]:
    """Plan every stack of `stacks`, at most `max_stacks` at once (default: as many as the
    ``--parallelism`` budget); an error ends that stack only. With `lock`, each stack's lock
    is held while its live state is read. Outcomes in the order of `stacks`."""
    if lock is not None:
        lock.check()
    budget = Budget(aws)

    def one(stack: Stack) -> StackOutcome:
        try:
            with open_loaded(stack, aws, intent=Intent.PLAN, lock=lock, budget=budget) as run:
                return StackOutcome(stack=stack, plan=run.plan(gate, now=now))
        except KmsplanError as exc:
            return StackOutcome(stack=stack, error=exc.render())

    return each(one, stacks, max_stacks or aws.parallelism)


def each(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """`[fn(item) for item in items]` on up to `workers` threads, results in item order."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(
        max_workers=min(workers, len(items)), thread_name_prefix="kmsplan-stack"
    ) as pool:
        return list(pool.map(fn, items))


def run_exit_code(outcomes: Sequence[StackOutcome], *, detailed: bool) -> ExitCode:
    """1 if any stack failed; else, with `detailed`, 3 if anything is blocked, 2 if any stack
    has changes; else 0 (each stack's `StackStatus`, as the run's summary counts them)."""
    statuses = {StackStatus.of(o.plan) for o in outcomes}
    if StackStatus.FAILED in statuses:
        return ExitCode.ERROR
    if not detailed:
        return ExitCode.OK
    if StackStatus.BLOCKED in statuses:
        return ExitCode.BLOCKED
    return ExitCode.CHANGES if StackStatus.CHANGES in statuses else ExitCode.OK


# How a stack's run is opened: with the run's shared budget (None: a run of one stack), as a
# context manager that holds the stack's lock until it ends (`open_loaded`, `open_saved`).
Opener = Callable[[Budget | None], AbstractContextManager[Run]]

# How the command applies one stack's plan in its run (progress, audit log, time budget); the
# applier stops starting calls once `stop` is set.
ApplyStack = Callable[[Stack, Run, Plan, threading.Event], ApplyResult]


@dataclass(frozen=True, slots=True)
class StackSource:
    """A stack of the run and how to open its run."""

    stack: Stack
    open: Opener


class _Stage:
    """One stack's thread: open, plan, wait for the run's decision, apply, close."""

    def __init__(self, source: StackSource) -> None:
        self.source = source
        self.outcome = StackOutcome(stack=source.stack)
        self.planned = threading.Event()
        self.turn = threading.Event()  # --fail-fast: this stack's turn to apply
        self.crash: BaseException | None = None  # not a KmsplanError: re-raised by the run

    @property
    def applicable(self) -> bool:
        o = self.outcome
        return o.plan is not None and o.error is None and o.plan.has_changes


class StackRuns:
    """Several stacks carried from their locks through their plans to their applies.

    Use as a context manager (`open_stacks`): entering opens and plans every stack, each in
    its own thread and under its own lock; `planned` is then every stack's outcome. `apply`
    applies the stacks whose plans are applicable and waits for them; leaving without
    applying (a refusal, no approval, nothing to do) releases every stack untouched.
    """

    def __init__(
        self,
        sources: Sequence[StackSource],
        aws: AwsSettings,
        gate: GateOptions,
        *,
        now: datetime | None = None,
    ) -> None:
        self._stages = [_Stage(s) for s in sources]
        self._gate = gate
        self._now = now
        self._budget = Budget(aws)
        workers = max(1, min(len(sources), aws.parallelism))
        self._planning = threading.Semaphore(workers)
        self._applying = threading.Semaphore(workers)
        self._decided = threading.Event()
        self._go = False
        self._apply: ApplyStack | None = None
        self._fail_fast = False
        self._halted_by: str | None = None
        self.stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(s,), name=f"kmsplan-stack-{i}")
            for i, s in enumerate(self._stages)
        ]

    # ---- the calling thread ------------------------------------------------------------

    def __enter__(self) -> StackRuns:
        for thread in self._threads:
            thread.start()
        try:
            for stage in self._stages:
                stage.planned.wait()
        except BaseException:
            self._finish(go=False)
            raise
        if any(stage.crash is not None for stage in self._stages):
            self._finish(go=False)  # closes every stack, then raises the crash
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish(go=False)

    @property
    def planned(self) -> list[StackOutcome]:
        """Every stack's outcome once planned: its plan, or the error that stopped it."""
        return [s.outcome for s in self._stages]

    @property
    def to_apply(self) -> list[Stack]:
        """The stacks with changes to apply: planned, nothing blocked."""
        return [s.source.stack for s in self._stages if s.applicable]

    def apply(self, apply: ApplyStack, *, fail_fast: bool) -> list[StackOutcome]:
        """Apply every applicable stack with `apply`, in its own thread; with `fail_fast`,
        one stack after another in the order given, none after the first that fails. Returns
        every stack's outcome once all are done. An interrupt (Ctrl-C) stops every applier
        from starting another call, waits for the calls on the wire, and is reported."""
        self._apply = apply
        self._fail_fast = fail_fast
        self._finish(go=True)
        return [s.outcome for s in self._stages]

    def _finish(self, *, go: bool) -> None:
        """Tell the stacks what the run decided (once), and wait for their threads."""
        if not self._decided.is_set():
            self._go = go
            if self._stages:
                self._stages[0].turn.set()
            self._decided.set()
        try:
            for thread in self._threads:
                thread.join()
        except KeyboardInterrupt:
            self.stop.set()
            for thread in self._threads:
                thread.join()
            raise KmsplanError(
                "apply interrupted: no new call was started after the interrupt; the calls "
                "made before it stand. Re-run kmsplan apply to finish: every step is safe to "
                "repeat, and the next plan shows only what remains."
            ) from None
        self._raise_crash()

    def _raise_crash(self) -> None:
        for stage in self._stages:
            if stage.crash is not None:
                crash, stage.crash = stage.crash, None
                raise crash

    # ---- each stack's thread ---------------------------------------------------------

    def _work(self, stage: _Stage) -> None:
        index = self._stages.index(stage)
        stack = stage.source.stack
        try:
            with stage.source.open(self._budget) as run:
                with self._planning:
                    plan = run.plan(self._gate, now=self._now)
                stage.outcome = StackOutcome(stack=stack, plan=plan, error=_refusal(plan))
                stage.planned.set()
                self._decided.wait()
                if self._go and stage.applicable:
                    self._apply_stage(stage, run, plan)
        except KmsplanError as exc:
            stage.outcome = dataclasses.replace(stage.outcome, error=exc.render())
        except Stopped:
            stage.outcome = dataclasses.replace(stage.outcome, error=INTERRUPTED)
        except BaseException as exc:  # a bug, or the process going down: the run re-raises it
            stage.crash = exc
            self.stop.set()
        finally:
            stage.planned.set()
            self._pass_turn(index, stage)

    def _pass_turn(self, index: int, stage: _Stage) -> None:
        """--fail-fast: once this stack's turn has come and it is done, the next one's turn;
        a stack that failed halts the stacks after it."""
        self._decided.wait()
        if not (self._go and self._fail_fast):
            return
        stage.turn.wait()
        if stage.outcome.failed and self._halted_by is None:
            self._halted_by = stage.source.stack.name
        if index + 1 < len(self._stages):
            self._stages[index + 1].turn.set()

    def _apply_stage(self, stage: _Stage, run: Run, plan: Plan) -> None:
        assert self._apply is not None
        if self._fail_fast:
            stage.turn.wait()
            if self._halted_by is not None:
                stage.outcome = dataclasses.replace(
                    stage.outcome,
                    error=f"stack {self._halted_by} failed first (--fail-fast); nothing was "
                    "changed in this stack",
                )
                return
        if self.stop.is_set():
            stage.outcome = dataclasses.replace(stage.outcome, error=INTERRUPTED)
            return
        with self._applying:
            result = self._apply(stage.source.stack, run, plan, self.stop)
        stage.outcome = dataclasses.replace(stage.outcome, result=result)


def _refusal(plan: Plan) -> str | None:
    """Why the applier would refuse `plan` (blocked or malformed), or None."""
    try:
        check_plan(plan)
    except KmsplanError as exc:
        return exc.render()
    return None


def open_stacks(
    sources: Sequence[StackSource],
    aws: AwsSettings,
    gate: GateOptions,
    *,
    now: datetime | None = None,
) -> StackRuns:
    """Open and plan every stack of `sources` (see `StackRuns`)."""
    return StackRuns(sources, aws, gate, now=now)


def loaded_sources(
    stacks: Sequence[Stack], aws: AwsSettings, *, intent: Intent, lock: LockOptions | None
) -> list[StackSource]:
    """A source per loaded stack: its run opened with `open_loaded`."""

    def opener(stack: Stack) -> Opener:
        return lambda budget: open_loaded(stack, aws, intent=intent, lock=lock, budget=budget)

    return [StackSource(stack, opener(stack)) for stack in stacks]


def saved_sources(
    path: str, plans: Sequence[Plan], aws: AwsSettings, *, lock: LockOptions | None
) -> list[StackSource]:
    """A source per stack of a saved run: its run opened with `open_saved`."""

    def opener(plan: Plan) -> Opener:
        return lambda budget: open_saved(path, plan, aws, lock=lock, budget=budget)

    return [
        StackSource(
            Stack(name=p.stack, account=p.account_id, region=p.region, role=p.role), opener(p)
        )
        for p in plans
    ]
