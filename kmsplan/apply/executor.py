"""apply_plan: run a plan's changes in dependency order, concurrently where independent.

This is the only code in kmsplan that writes to KMS. It refuses a plan before its first write
when anything in it is blocked or malformed; it never stops half-way through a change without
saying which calls were made; a failed change stops only the work that depends on it.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from kmsplan.apply.calls import (
    WRITE_OPERATIONS,
    ChangeRunner,
    Limiter,
    Stopped,
    writer_per_change,
)
from kmsplan.apply.result import (
    ApplyEvent,
    ApplyResult,
    ChangeOutcome,
    ChangeStatus,
    EventKind,
)
from kmsplan.apply.retry import RetryPolicy
from kmsplan.audit import AuditLog
from kmsplan.aws.writer import Writer
from kmsplan.errors import RefusedError
from kmsplan.kmsspec import DELETION_WINDOW_MAX_DAYS, DELETION_WINDOW_MIN_DAYS
from kmsplan.model import TAG_DUPLICATE_OF, TAG_KEY, TAG_STACK, Placement
from kmsplan.plan.graph import BARRIER, PlanGraph, refs_in
from kmsplan.plan.types import Action, ApiCall, Change, Plan

MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = DELETION_WINDOW_MIN_DAYS, DELETION_WINDOW_MAX_DAYS


def dependencies(plan: Plan) -> dict[str, tuple[str, ...]]:
    """For each change, the changes that must be done before it starts: its own
    `depends_on`, then the plan graph's edge rules (`kmsplan.plan.graph.RULES`: references,
    a key before its aliases and grants, a trailing disable after the key and its grants,
    alias moves before the old key's deletion, every key deletion after every other
    change)."""
    return PlanGraph(plan.changes).dependencies()


def _releases_only(call: ApiCall) -> bool:
    """A call a release may make: UntagResource, or the TagResource that marks a released
    duplicate (`kmsplan.plan.differ.release_duplicates`)."""
    if call.operation == "UntagResource":
        return True
    tags = call.params.get("Tags")
    return (
        call.operation == "TagResource"
        and isinstance(tags, list)
        and bool(tags)
        and all(isinstance(t, dict) and t.get("TagKey") == TAG_DUPLICATE_OF for t in tags)
    )


def check_plan(plan: Plan) -> None:
    """Refuse, before any call, a plan that must not be applied. Raises RefusedError."""
    if plan.blocked:
        lines = [
            f"  {c.address}: {b.reason.removeprefix(c.address + ': ')} (to unblock: {b.unblock})"
            for c in plan.blocked
            for b in c.blocked
        ]
        raise RefusedError(
            f"refusing to apply: {len(plan.blocked)} change(s) blocked by the safety gate;"
            " nothing was changed:\n" + "\n".join(lines)
        )
    problems: list[str] = []
    creates = {
        c.address for c in plan.changes if any(call.operation == "CreateKey" for call in c.calls)
    }
    seen: set[str] = set()
    for change in plan.changes:
        if change.address in seen:
            problems.append(f"{change.address}: listed twice")
        seen.add(change.address)
        if change.is_trailing_disable and any(c.operation != "DisableKey" for c in change.calls):
            problems.append(f"{change.address}: a key's trailing disable makes only DisableKey")
        if change.action is Action.RELEASE and not all(map(_releases_only, change.calls)):
            problems.append(
                f"{change.address}: a release makes only UntagResource (and, for a "
                f"duplicate, a TagResource of {TAG_DUPLICATE_OF} alone)"
            )
        if change.action is Action.ADOPT and not _tags_identity(change, plan.stack):
            problems.append(
                f"{change.address}: the adopted key would not carry its identity tags"
                f" {TAG_STACK}={plan.stack} and {TAG_KEY}={change.key}"
            )
        for call in change.calls:
            op, params = call.operation, call.params
            where = f"{change.address}: {op}"
            if op not in WRITE_OPERATIONS:
                problems.append(f"{where}: not an operation kmsplan applies")
            for target in refs_in(params):
                if target not in creates:
                    problems.append(f"{where}: refers to {target}, which creates no key")
            if params.get("BypassPolicyLockoutSafetyCheck") and not (
                plan.gate.bypass_policy_lockout_safety_check
            ):
                problems.append(
                    f"{where}: BypassPolicyLockoutSafetyCheck without"
                    " --bypass-policy-lockout-safety-check"
                )
            if op == "ScheduleKeyDeletion":
                if not plan.gate.allow_delete:
                    problems.append(f"{where}: key deletion without --allow-delete")
                window = params.get("PendingWindowInDays", 30)
                if not (isinstance(window, int) and MIN_WINDOW_DAYS <= window <= MAX_WINDOW_DAYS):
                    problems.append(f"{where}: pending window {window!r} is not 7-30 days")
            if op in ("CreateKey", "ReplicateKey"):
                tags = {t.get("TagKey"): t.get("TagValue") for t in params.get("Tags", [])}
                if tags.get(TAG_STACK) != plan.stack or not tags.get(TAG_KEY):
                    problems.append(
                        f"{where}: the key would not carry its identity tags"
                        f" {TAG_STACK}={plan.stack} and {TAG_KEY}"
                    )
    if PlanGraph(plan.changes).has_cycle():
        problems.append("the changes' dependencies form a cycle")
    if problems:
        raise RefusedError(
            "refusing to apply a malformed plan; nothing was changed:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


def _tags_identity(change: Change, stack: str) -> bool:
    """Whether `change` tags its key with the stack's and the block's identity."""
    for call in change.calls:
        if call.operation == "TagResource":
            tags = {t.get("TagKey"): t.get("TagValue") for t in call.params.get("Tags", [])}
            if tags.get(TAG_STACK) == stack and tags.get(TAG_KEY) == change.key:
                return True
    return False


def apply_plan(
    plan: Plan,
    writers: Callable[[Placement], Writer],
    *,
    parallelism: int,
    limiter: Limiter | None,
    on_event: Callable[[ApplyEvent], None],
    audit: AuditLog | None,
    gate_recheck: bool = True,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    find_siblings: Callable[[str, str], Sequence[str]] | None = None,
    stop: threading.Event | None = None,
) -> ApplyResult:
    """Make the plan's calls, each change's through `writers(plan.placement_of(change))`, and
    report what happened.

    At most `parallelism` changes run at once, each as soon as the changes it depends on are
    done. `limiter.acquire(operation)` is called before every call (pass None when the client
    rate-limits itself). Throttled calls are made again until `timeout` seconds (None: no
    limit) have passed since the start; then no further call is made. Refuses (RefusedError,
    nothing called) a blocked or malformed plan; a placement `writers` has no writer for
    raises its KmsplanError before the first call. A process-level interruption
    (KeyboardInterrupt, a BaseException) stops new calls and is re-raised; the next plan
    shows what remains. `find_siblings(stack, name)` (the ids of the keys tagged so) lets each
    CreateKey look for a key another run created with the same name. Setting `stop` (shared
    by the applies of a run's stacks) stops new calls as an interruption does: the changes
    not started are reported as such.
    """
    check_plan(plan)
    event_lock = threading.Lock()

    def emit(event: ApplyEvent) -> None:
        with event_lock:
            on_event(event)

    def notify(change: Change, message: str) -> None:
        emit(ApplyEvent(kind=EventKind.RETRYING, change=change, message=message))

    runner = ChangeRunner(
        writer_per_change(plan, writers),
        stack=plan.stack,
        limiter=limiter,
        audit=audit,
        retry=retry or RetryPolicy(),
        gate_recheck=gate_recheck,
        notify=notify,
        timeout=timeout,
        clock=clock,
        find_siblings=find_siblings,
    )
    if stop is not None:
        runner.stop = stop
    schedule = _Schedule(PlanGraph(plan.changes))
    outcomes: dict[str, ChangeOutcome] = {}
    running: dict[Future[ChangeOutcome], Change] = {}

    def finish(change: Change, outcome: ChangeOutcome) -> None:
        outcomes[change.address] = outcome
        emit(ApplyEvent(kind=EventKind.FINISHED, change=change, outcome=outcome))
        for skipped in schedule.settle(change.address, outcome):
            outcomes[skipped.address] = skipped
            emit(
                ApplyEvent(
                    kind=EventKind.FINISHED,
                    change=schedule.graph.by_address[skipped.address],
                    outcome=skipped,
                )
            )

    abandoned: list[BaseException] = []  # what stopped the run, if anything

    def start(change: Change) -> ChangeOutcome:
        if runner.stop.is_set():
            raise Stopped
        try:
            emit(ApplyEvent(kind=EventKind.STARTED, change=change))
            return runner.run(change)
        except Stopped:
            raise
        except BaseException as exc:
            # The process is going down (an interrupt, a simulated crash): no worker may
            # start another call, not even one already queued.
            runner.stop.set()
            abandoned.append(exc)
            raise

    slots = max(1, parallelism)
    pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="kmsplan-apply")
    try:
        while schedule.ready or running:
            # Start at most `slots` changes at a time, choosing what keeps the most quotas
            # busy (see _Ready.pop): handing every ready change to the pool at once would
            # queue each new key's aliases and grants behind all the other keys' CreateKey.
            while schedule.ready and len(running) < slots:
                change = schedule.ready.pop()
                running[pool.submit(start, change)] = change
            if not running:
                break  # cannot happen for an acyclic plan; never spin
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                change = running.pop(future)
                schedule.ready.finished(change)
                finish(change, future.result())
    except BaseException as exc:
        # The run is being abandoned (an interrupt, the process going down): make no new call.
        runner.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        cause = abandoned[0] if abandoned else exc
        if cause is exc:
            raise
        raise cause from None
    pool.shutdown(wait=True)
    return ApplyResult(outcomes=tuple(outcomes[c.address] for c in plan.changes))


class _Ready:
    """Changes whose dependencies are done, not started yet: one queue per first API
    operation, so that choosing the next one costs the number of operations, not the number
    of ready changes.

    The next change is the longest-ready among those whose first API operation the fewest
    running changes started with. Every KMS write API has its own request quota (CreateKey
    5/s, CreateAlias 5/s, CreateGrant 50/s, ...) and the rate limiter makes callers of a
    busy API wait. Spreading the free slots over operations lets those quotas be used at the
    same time — a large create runs CreateKey and CreateAlias side by side instead of one
    after the other.
    """

    def __init__(self) -> None:
        self._queues: dict[str, deque[tuple[int, Change]]] = {}
        self._in_flight: Counter[str] = Counter()
        self._sequence = 0
        self._size = 0

    def __bool__(self) -> bool:
        return self._size > 0

    def push(self, change: Change) -> None:
        self._queues.setdefault(_first_operation(change), deque()).append((self._sequence, change))
        self._sequence += 1
        self._size += 1

    def pop(self) -> Change:
        operation = min(
            (op for op, queue in self._queues.items() if queue),
            key=lambda op: (self._in_flight[op], self._queues[op][0][0]),
        )
        _, change = self._queues[operation].popleft()
        self._size -= 1
        self._in_flight[operation] += 1
        return change

    def finished(self, change: Change) -> None:
        self._in_flight[_first_operation(change)] -= 1


class _Schedule:
    """The applier's walk of the plan graph: a count of unmet dependencies per change; a
    change is ready when its count reaches zero, and skipped as soon as something it depends
    on fails or is skipped. Each change and each edge is visited once."""

    def __init__(self, graph: PlanGraph) -> None:
        self.graph = graph
        self.ready = _Ready()
        self._unmet = graph.unmet_counts()
        self._order = {address: i for i, address in enumerate(graph.nodes)}
        self._settled: dict[str, ChangeOutcome | None] = {}  # None: the barrier, passed
        for node in graph.nodes:
            if self._unmet[node] == 0:
                self._release(node)

    def _release(self, node: str) -> None:
        if node == BARRIER:
            self._settled[node] = None
            self._met(node)
        else:
            self.ready.push(self.graph.by_address[node])

    def _met(self, node: str) -> None:
        for after in self.graph.succs[node]:
            self._unmet[after] -= 1
            if self._unmet[after] == 0 and after not in self._settled:
                self._release(after)

    def settle(self, address: str, outcome: ChangeOutcome) -> list[ChangeOutcome]:
        """Record how `address` ended; returns the changes skipped because of it, in plan
        order."""
        self._settled[address] = outcome
        if outcome.status is ChangeStatus.DONE:
            self._met(address)
            return []
        skipped: list[ChangeOutcome] = []
        pending = [(self._order[a], a) for a in self.graph.succs[address]]
        heapq.heapify(pending)
        while pending:
            _, node = heapq.heappop(pending)
            if node in self._settled:
                continue
            causes = self._causes(node)
            if node == BARRIER:
                self._settled[node] = ChangeOutcome(
                    address=node,
                    action=outcome.action,
                    status=ChangeStatus.SKIPPED,
                    skipped_because=causes,
                )
            else:
                change = self.graph.by_address[node]
                skip = ChangeOutcome(
                    address=change.address,
                    action=change.action,
                    status=ChangeStatus.SKIPPED,
                    calls_not_done=tuple(call.operation for call in change.calls),
                    skipped_because=causes,
                )
                self._settled[node] = skip
                skipped.append(skip)
            for after in self.graph.succs[node]:
                if after not in self._settled:
                    heapq.heappush(pending, (self._order[after], after))
        return skipped

    def _causes(self, node: str) -> tuple[str, ...]:
        """The failed changes upstream of `node`, so far, in dependency order."""
        causes: list[str] = []
        for before in self.graph.preds[node]:
            o = self._settled.get(before)
            if o is None or o.status is ChangeStatus.DONE:
                continue
            if o.status is ChangeStatus.SKIPPED:
                causes.extend(o.skipped_because)
            else:
                causes.append(o.address)
        return tuple(dict.fromkeys(causes))


def _first_operation(change: Change) -> str:
    return change.calls[0].operation if change.calls else ""
