"""apply_plan: run a plan's changes in dependency order, concurrently where independent.

This is the only code in kmsplan that writes to KMS. It refuses a plan before its first write
when anything in it is blocked or malformed; it never stops half-way through a change without
saying which calls were made; a failed change stops only the work that depends on it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from kmsplan.apply import guard
from kmsplan.apply.calls import WRITE_OPERATIONS, ChangeRunner, Limiter, Stopped
from kmsplan.apply.result import (
    ApplyEvent,
    ApplyResult,
    ChangeOutcome,
    ChangeStatus,
    EventKind,
)
from kmsplan.apply.retry import RetryPolicy
from kmsplan.audit import AuditLog
from kmsplan.errors import RefusedError
from kmsplan.model import TAG_KEY, TAG_STACK
from kmsplan.plan.types import Action, Change, Plan, Resource, is_ref

MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = 7, 30


def _refs_in(value: Any) -> list[str]:
    if is_ref(value):
        return [str(value["$ref"])]
    if isinstance(value, Mapping):
        return [ref for item in value.values() for ref in _refs_in(item)]
    if isinstance(value, (list, tuple)):
        return [ref for item in value for ref in _refs_in(item)]
    return []


def _is_key_deletion(change: Change) -> bool:
    return change.resource is Resource.KEY and change.action is Action.DELETE


def dependencies(plan: Plan) -> dict[str, tuple[str, ...]]:
    """For each change, the changes that must be done before it starts.

    Besides the plan's own `depends_on`: every `$ref` target; the key's own change (create,
    restore, update) for every alias and grant change of that key; the key's own change and
    every grant change of the key for its trailing disable (KMS refuses CreateGrant and
    rotation changes on a disabled key); and, because a key deletion is the one step that
    cannot be undone, every key deletion waits for all the other changes of the plan that
    are not key deletions.
    """
    addresses = {c.address for c in plan.changes}
    key_change = {
        c.key: c.address
        for c in plan.changes
        if c.resource is Resource.KEY
        and c.action is not Action.DELETE
        and not c.is_trailing_disable
    }
    grant_changes: dict[str, list[str]] = {}
    for c in plan.changes:
        if c.resource is Resource.GRANT:
            grant_changes.setdefault(c.key, []).append(c.address)
    others = [c.address for c in plan.changes if not _is_key_deletion(c)]
    result: dict[str, tuple[str, ...]] = {}
    for change in plan.changes:
        needed: list[str] = [a for a in change.depends_on if a in addresses]
        for call in change.calls:
            needed.extend(_refs_in(call.params))
        if change.resource is not Resource.KEY and change.key in key_change:
            needed.append(key_change[change.key])
        if change.is_trailing_disable:
            if change.key in key_change:
                needed.append(key_change[change.key])
            needed.extend(grant_changes.get(change.key, ()))
        if _is_key_deletion(change):
            needed.extend(others)
        result[change.address] = tuple(dict.fromkeys(a for a in needed if a != change.address))
    return result


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
        for call in change.calls:
            op, params = call.operation, call.params
            where = f"{change.address}: {op}"
            if op not in WRITE_OPERATIONS:
                problems.append(f"{where}: not an operation kmsplan applies")
            for target in _refs_in(params):
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
            if op == "CreateKey":
                tags = {t.get("TagKey"): t.get("TagValue") for t in params.get("Tags", [])}
                if tags.get(TAG_STACK) != plan.stack or not tags.get(TAG_KEY):
                    problems.append(
                        f"{where}: the key would not carry its identity tags"
                        f" {TAG_STACK}={plan.stack} and {TAG_KEY}"
                    )
    deps = dependencies(plan)
    if _has_cycle(deps):
        problems.append("the changes' dependencies form a cycle")
    if problems:
        raise RefusedError(
            "refusing to apply a malformed plan; nothing was changed:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


def _has_cycle(deps: Mapping[str, tuple[str, ...]]) -> bool:
    visiting: set[str] = set()
    finished: set[str] = set()

    def visit(node: str) -> bool:
        if node in finished:
            return False
        if node in visiting:
            return True
        visiting.add(node)
        if any(visit(d) for d in deps.get(node, ())):
            return True
        visiting.discard(node)
        finished.add(node)
        return False

    return any(visit(node) for node in deps)


def apply_plan(
    plan: Plan,
    kms: Any,
    *,
    parallelism: int,
    limiter: Limiter | None,
    on_event: Callable[[ApplyEvent], None],
    audit: AuditLog | None,
    gate_recheck: bool = True,
    retry: RetryPolicy | None = None,
) -> ApplyResult:
    """Make the plan's calls on `kms` (a boto3 KMS client) and report what happened.

    At most `parallelism` changes run at once, each as soon as the changes it depends on are
    done. `limiter.acquire(operation)` is called before every call (pass None when the client
    rate-limits itself). Refuses (RefusedError, nothing called) a blocked or malformed plan.
    A process-level interruption (KeyboardInterrupt, a BaseException) stops new calls and is
    re-raised; the next plan shows what remains.
    """
    check_plan(plan)
    guard.install(kms)
    event_lock = threading.Lock()

    def emit(event: ApplyEvent) -> None:
        with event_lock:
            on_event(event)

    def notify(change: Change, message: str) -> None:
        emit(ApplyEvent(kind=EventKind.RETRYING, change=change, message=message))

    runner = ChangeRunner(
        kms,
        stack=plan.stack,
        limiter=limiter,
        audit=audit,
        retry=retry or RetryPolicy(),
        gate_recheck=gate_recheck,
        notify=notify,
    )
    deps = dependencies(plan)
    outcomes: dict[str, ChangeOutcome] = {}
    waiting = list(plan.changes)
    running: dict[Future[ChangeOutcome], Change] = {}

    def finish(change: Change, outcome: ChangeOutcome) -> None:
        outcomes[change.address] = outcome
        emit(ApplyEvent(kind=EventKind.FINISHED, change=change, outcome=outcome))

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
    ready: list[Change] = []  # dependencies done, not started yet; oldest first
    try:
        while waiting or ready or running:
            for change in list(waiting):
                upstream = [outcomes.get(a) for a in deps[change.address]]
                if any(o is not None and o.status is not ChangeStatus.DONE for o in upstream):
                    waiting.remove(change)
                    finish(change, _skipped(change, upstream))
                elif all(o is not None for o in upstream):
                    waiting.remove(change)
                    ready.append(change)
            # Start at most `slots` changes at a time, choosing what keeps the most quotas
            # busy (see _next_change): handing every ready change to the pool at once would
            # queue each new key's aliases and grants behind all the other keys' CreateKey.
            while ready and len(running) < slots:
                change = _next_change(ready, running.values())
                ready.remove(change)
                running[pool.submit(start, change)] = change
            if not running:
                break  # cannot happen for an acyclic plan; never spin
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                change = running.pop(future)
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


def _next_change(ready: Sequence[Change], running: Iterable[Change]) -> Change:
    """The ready change to start next: the longest-ready among those whose first API
    operation the fewest running changes started with.

    Every KMS write API has its own request quota (CreateKey 5/s, CreateAlias 5/s,
    CreateGrant 50/s, ...) and the rate limiter makes callers of a busy API wait. Spreading
    the free slots over operations lets those quotas be used at the same time — a large
    create runs CreateKey and CreateAlias side by side instead of one after the other.
    """
    in_flight = Counter(_first_operation(c) for c in running)
    return min(ready, key=lambda c: in_flight[_first_operation(c)])


def _first_operation(change: Change) -> str:
    return change.calls[0].operation if change.calls else ""


def _skipped(change: Change, upstream: list[ChangeOutcome | None]) -> ChangeOutcome:
    causes: list[str] = []
    for o in upstream:
        if o is None or o.status is ChangeStatus.DONE:
            continue
        causes.extend(o.skipped_because if o.status is ChangeStatus.SKIPPED else (o.address,))
    return ChangeOutcome(
        address=change.address,
        action=change.action,
        status=ChangeStatus.SKIPPED,
        calls_not_done=tuple(call.operation for call in change.calls),
        skipped_because=tuple(dict.fromkeys(causes)),
    )
