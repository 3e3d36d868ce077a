"""How each KMS call of a plan is made so that re-running it is always safe.

A plan says which calls to make; this module decides how. Every call goes through the writer
of the change's account and Region (kmsplan.aws.writer: the port to KMS, which answers in
kmsplan's own errors), the rate limiter and into the audit log. A throttled call is made again
as soon as the rate limiter lets it (the limiter has slowed that API down), reported as a
retry, for as long as the apply's time budget lasts: KMS quotas are shared with every caller
in the account, so throttling means "slower", not "failed". Each write is made so that a repeat
of it, after a crash or a lost answer, does not change the outcome:

- CreateKey is never retried blindly (see `guard`): after an ambiguous answer the key is
  looked up by its identity tags and adopted if it exists. Right after it, the stack's keys
  with the same name are looked up: if another run created one meanwhile (two applies raced
  without a stack lock), the key the aliases and grants use, else the older, is kept and the
  other released — tagged kmsplan:duplicate-of, its ownership tags removed, never deleted —
  before any alias or grant is created (`_settle_duplicates`).
- CreateGrant first lists the key's grants and skips if an equal grant (same Name and
  parameters) is there: real KMS is idempotent by Name, the emulator is not.
- CreateAlias answered AlreadyExists with the same target, ScheduleKeyDeletion on a key already
  pending deletion, DeleteAlias / RevokeGrant of something already gone: success.
- Right before ScheduleKeyDeletion the key's protection tag is read again (the gate at apply
  time), and afterwards the key's state is confirmed: KMS emulators answer 200 without
  scheduling anything for a bad window.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from kmsplan.apply.result import ChangeOutcome, ChangeStatus
from kmsplan.apply.retry import RetryPolicy
from kmsplan.audit import AuditLog
from kmsplan.aws.writer import AmbiguousOutcome, KmsCallError, RequestFailed, Throttled, Writer
from kmsplan.errors import KmsplanError
from kmsplan.model import (
    TAG_DUPLICATE_OF,
    TAG_KEY,
    TAG_PROTECTION,
    TAG_STACK,
    KeyState,
    Placement,
    deletion_protected,
)
from kmsplan.plan.types import Change, Plan, is_ref

# Every operation a plan may ask the applier to make. Anything else is refused up front.
WRITE_OPERATIONS = frozenset(
    {
        "CreateKey",
        "PutKeyPolicy",
        "UpdateKeyDescription",
        "TagResource",
        "UntagResource",
        "EnableKeyRotation",
        "DisableKeyRotation",
        "EnableKey",
        "DisableKey",
        "CreateAlias",
        "UpdateAlias",
        "DeleteAlias",
        "CreateGrant",
        "RevokeGrant",
        "RetireGrant",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "ReplicateKey",
        "UpdatePrimaryRegion",
    }
)
# Sent to the primary key's Region (the plan's home) whatever the change's placement:
# ReplicateKey names the replica's Region in its parameters.
PRIMARY_REGION_OPERATIONS = frozenset({"ReplicateKey"})

# The emulator answers HTTP 500 when these get a key ARN; a bare key id is valid everywhere.
BARE_KEY_ID_OPERATIONS = frozenset(
    {"EnableKey", "DisableKey", "CancelKeyDeletion", "ScheduleKeyDeletion"}
)

# Attempts at a non-idempotent create whose answer was lost, and lookups after each loss
# (the lookup itself is eventually consistent).
MAX_CREATE_ATTEMPTS = 3
LOOKUPS_AFTER_AMBIGUOUS_CREATE = 3
# Reads of DescribeKey to confirm a scheduled deletion took effect.
CONFIRM_READS = 5


class Limiter(Protocol):
    def acquire(self, operation: str) -> None: ...


class CallFailed(Exception):
    """A call of a change failed for good; the change stops there."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.message = message
        super().__init__(f"{operation}: {code}: {message}")


class Stopped(Exception):
    """The run is being abandoned; no further call is made."""


def writer_per_change(
    plan: Plan, writers: Callable[[Placement], Writer]
) -> Callable[[Change], Writer]:
    """The writer of each change's placement (`plan.placement_of`). Every placement of the
    plan gets its writer here, before any call: one the run has no clients for stops the
    apply before its first write."""
    by_placement: dict[Placement, Writer] = {}
    for change in plan.changes:
        placements = [plan.placement_of(change)]
        if any(call.operation in PRIMARY_REGION_OPERATIONS for call in change.calls):
            placements.append(plan.placement)
        for placement in placements:
            if placement not in by_placement:
                by_placement[placement] = writers(placement)
    return lambda change: by_placement[plan.placement_of(change)]


def bare_key_id(value: str) -> str:
    """`arn:aws:kms:REGION:ACCOUNT:key/ID` -> `ID`; anything else unchanged."""
    if value.startswith("arn:") and ":key/" in value:
        return value.rsplit(":key/", 1)[1]
    return value


def _constraints(value: Any) -> Any:
    return value or None


def grant_matches(live: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether a ListGrants entry is the grant a CreateGrant call would create."""
    return (
        live.get("Name") == params.get("Name")
        and live.get("GranteePrincipal") == params.get("GranteePrincipal")
        and sorted(live.get("Operations") or []) == sorted(params.get("Operations") or [])
        and (live.get("RetiringPrincipal") or None) == (params.get("RetiringPrincipal") or None)
        and _constraints(live.get("Constraints")) == _constraints(params.get("Constraints"))
    )


class ChangeRunner:
    """Runs the calls of changes, each through the writer of its placement; shared by the
    worker threads.

    `timeout` (seconds, None for none) is the apply's time budget, counted from now on
    `clock`: once it is spent no further call is made, and a throttled call is not retried.
    """

    def __init__(
        self,
        writer_for: Callable[[Change], Writer],
        *,
        stack: str,
        limiter: Limiter | None,
        audit: AuditLog | None,
        retry: RetryPolicy,
        gate_recheck: bool,
        notify: Callable[[Change, str], None],
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        find_siblings: Callable[[str, str], Sequence[str]] | None = None,
    ) -> None:
        self._writer_for = writer_for
        # The ids of the keys tagged with a stack and name (tag index), to find a key another
        # run created with the same name (None: not looked for).
        self._find_siblings = find_siblings
        self._timeout = timeout
        self._clock = clock
        self._deadline = None if timeout is None else clock() + timeout
        self._stack = stack
        self._limiter = limiter
        self._audit = audit
        self._retry = retry
        self._gate_recheck = gate_recheck
        self._notify = notify
        self._lock = threading.Lock()
        self._refs: dict[str, str] = {}  # change address -> KeyId its CreateKey returned
        self._created: set[str] = set()  # key ids created (or adopted) in this run
        self.stop = threading.Event()

    # ---- a change -------------------------------------------------------------------

    def run(self, change: Change) -> ChangeOutcome:
        operations = [call.operation for call in change.calls]
        done: list[str] = []
        key_id: str | None = None
        for index, call in enumerate(change.calls):
            if self.stop.is_set():
                raise Stopped
            try:
                params = self._prepare(call.operation, call.params)
                created = self._execute(change, call.operation, params)
            except CallFailed as exc:
                failure = CallFailed(exc.operation or call.operation, exc.code, exc.message)
                return self._failed(change, done, operations[index:], failure)
            except KmsCallError as exc:
                return self._failed(
                    change,
                    done,
                    operations[index:],
                    CallFailed(call.operation, exc.code, exc.message),
                )
            except AmbiguousOutcome as exc:
                return self._failed(
                    change,
                    done,
                    operations[index:],
                    CallFailed(call.operation, "AmbiguousOutcome", exc.detail),
                )
            if created is not None:
                key_id = created
                with self._lock:
                    self._refs[change.address] = created
                    self._created.add(created)
            done.append(call.operation)
        return ChangeOutcome(
            address=change.address,
            action=change.action,
            status=ChangeStatus.DONE,
            calls_done=tuple(done),
            key_id=key_id,
        )

    @staticmethod
    def _failed(
        change: Change, done: list[str], not_done: list[str], failure: CallFailed
    ) -> ChangeOutcome:
        return ChangeOutcome(
            address=change.address,
            action=change.action,
            status=ChangeStatus.FAILED,
            calls_done=tuple(done),
            calls_not_done=tuple(not_done),
            failed_operation=failure.operation,
            error_code=failure.code,
            error_message=failure.message,
        )

    def _prepare(self, operation: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {name: self._resolve(value) for name, value in raw.items()}
        if isinstance(params.get("Policy"), (dict, list)):
            params["Policy"] = json.dumps(params["Policy"], indent=2)
        if operation == "PutKeyPolicy":
            params.setdefault("PolicyName", "default")
        if operation in BARE_KEY_ID_OPERATIONS and isinstance(params.get("KeyId"), str):
            params["KeyId"] = bare_key_id(params["KeyId"])
        return params

    def _resolve(self, value: Any) -> Any:
        if is_ref(value):
            address = value["$ref"]
            with self._lock:
                key_id = self._refs.get(address)
            if key_id is None:
                raise CallFailed("", "UnresolvedReference", f"no key id from {address}")
            return key_id
        if isinstance(value, dict):
            return {name: self._resolve(item) for name, item in value.items()}
        if isinstance(value, list):
            return [self._resolve(item) for item in value]
        return value

    def _execute(self, change: Change, operation: str, params: dict[str, Any]) -> str | None:
        """Make one call of `change`; returns the key id for CreateKey, else None."""
        if operation == "CreateKey":
            return self._create_key(change, params)
        if operation == "ReplicateKey":
            self._replicate_key(change, params)
        elif operation == "CreateGrant":
            self._create_grant(change, params)
        elif operation == "CreateAlias":
            self._create_alias(change, params)
        elif operation == "ScheduleKeyDeletion":
            self._schedule_key_deletion(change, params)
        elif operation == "CancelKeyDeletion":
            if self._key_state(change, params["KeyId"]) is KeyState.PENDING_DELETION:
                self._call_consistent(change, operation, params)
        elif operation in ("DeleteAlias", "RevokeGrant", "RetireGrant"):
            self._call_unless_gone(change, operation, params)
        else:
            self._call_consistent(change, operation, params)
        return None

    # ---- one API call ----------------------------------------------------------------

    def _call(self, change: Change, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One API call: rate-limited, audited, made again while KMS throttles it (within the
        time budget); raises the writer's errors, or CallFailed when it gets no answer."""
        if operation in PRIMARY_REGION_OPERATIONS:
            writer = self._writer_for(dataclasses.replace(change, placement=None))
        else:
            writer = self._writer_for(change)
        while True:
            if self.stop.is_set():
                raise Stopped
            if self._out_of_time():
                raise CallFailed(
                    operation,
                    "Timeout",
                    f"the apply's time budget of {self._timeout:g} s (--timeout) is spent;"
                    " not called",
                )
            if self._limiter is not None:
                self._limiter.acquire(operation)
            try:
                answer = writer.call(operation, params)
            except AmbiguousOutcome:
                self._record(change, operation, params, "error", None, "AmbiguousOutcome")
                raise
            except Throttled as exc:
                self._record(change, operation, params, "error", exc.request_id, exc.code)
                if self._out_of_time():
                    raise CallFailed(
                        operation,
                        exc.code,
                        f"{exc.message} (still throttled when the apply's time budget of"
                        f" {self._timeout:g} s (--timeout) ran out)",
                    ) from exc
                self._notify(
                    change,
                    f"{operation} throttled by KMS ({exc.code}): other callers share the"
                    " account's quota; slowing down and retrying",
                )
                continue
            except KmsCallError as exc:
                self._record(change, operation, params, "error", exc.request_id, exc.code)
                raise
            except RequestFailed as exc:
                # Connection errors that outlived botocore's retries, invalid parameters.
                self._record(change, operation, params, "error", None, exc.reason)
                raise CallFailed(operation, exc.reason, exc.message) from exc
            self._record(change, operation, params, "ok", answer.request_id, None, answer.body)
            return answer.body

    def _out_of_time(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    def _record(
        self,
        change: Change,
        operation: str,
        params: Mapping[str, Any],
        outcome: str,
        request_id: str | None,
        error_code: str | None,
        response: Mapping[str, Any] | None = None,
    ) -> None:
        if self._audit is None:
            return
        key_id = params.get("KeyId") or params.get("TargetKeyId")
        if operation == "CreateKey" and response is not None:
            key_id = response.get("KeyMetadata", {}).get("KeyId")
        alias = params.get("AliasName")
        if isinstance(key_id, str) and key_id.startswith("alias/"):
            alias, key_id = key_id, None
        grant = params.get("GrantId") or params.get("Name")
        self._audit.record(
            operation=operation,
            outcome=outcome,
            address=change.address,
            key_id=key_id if isinstance(key_id, str) else None,
            alias=alias if isinstance(alias, str) else None,
            grant=grant if isinstance(grant, str) else None,
            request_id=request_id,
            error_code=error_code,
        )

    def _call_consistent(
        self, change: Change, operation: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A call retried (bounded) while its error is KMS eventual consistency."""
        delays = self._retry.delays()
        while True:
            try:
                return self._call(change, operation, params)
            except KmsCallError as exc:
                if not self._is_eventual_consistency(operation, params, exc):
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise
                self._notify(change, f"{exc.code}: {exc.message}; retrying in {delay:.1f}s")
                self._retry.sleep(delay)

    def _is_eventual_consistency(
        self, operation: str, params: Mapping[str, Any], exc: KmsCallError
    ) -> bool:
        code, message = exc.code, exc.message
        if code == "MalformedPolicyDocumentException":
            # A principal IAM created moments ago; never the lockout-safety refusal.
            return operation in ("CreateKey", "PutKeyPolicy") and (
                "invalid principal" in message.lower()
            )
        if code in ("NotFoundException", "KMSInvalidStateException"):
            key_id = params.get("KeyId") or params.get("TargetKeyId")
            with self._lock:
                return isinstance(key_id, str) and bare_key_id(key_id) in self._created
        return False

    def _call_unless_gone(self, change: Change, operation: str, params: Mapping[str, Any]) -> None:
        """Delete-like calls: what is already gone counts as done."""
        try:
            self._call_consistent(change, operation, params)
        except KmsCallError as exc:
            if exc.code != "NotFoundException":
                raise

    # ---- reads the writes need -------------------------------------------------------

    def _describe(self, change: Change, key_id: str) -> dict[str, Any]:
        response = self._call_consistent(change, "DescribeKey", {"KeyId": key_id})
        metadata: dict[str, Any] = response["KeyMetadata"]
        return metadata

    def _key_state(self, change: Change, key_id: str) -> KeyState | None:
        state = self._describe(change, key_id).get("KeyState")
        try:
            return KeyState(state)
        except ValueError:
            return None

    def _tags(self, change: Change, key_id: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        params: dict[str, Any] = {"KeyId": key_id}
        while True:
            response = self._call_consistent(change, "ListResourceTags", params)
            tags.update({t["TagKey"]: t["TagValue"] for t in response.get("Tags", [])})
            if not response.get("Truncated") or not response.get("NextMarker"):
                return tags
            params = {"KeyId": key_id, "Marker": response["NextMarker"]}

    def _grants(self, change: Change, key_id: str) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"KeyId": key_id}
        while True:
            response = self._call_consistent(change, "ListGrants", params)
            yield from response.get("Grants", [])
            if not response.get("Truncated") or not response.get("NextMarker"):
                return
            params = {"KeyId": key_id, "Marker": response["NextMarker"]}

    def _find_key(self, change: Change, stack: str, name: str) -> str | None:
        """The usable key tagged as `stack`/`name`, if one exists (a lost CreateKey answer)."""
        params: dict[str, Any] = {"Limit": 1000}
        while True:
            response = self._call(change, "ListKeys", params)
            for entry in response.get("Keys", []):
                key_id = str(entry["KeyId"])
                try:
                    tags = self._tags(change, key_id)
                except KmsCallError:
                    continue  # AWS managed keys and keys we may not read are not ours
                if tags.get(TAG_STACK) != stack or tags.get(TAG_KEY) != name:
                    continue
                metadata = self._describe(change, key_id)
                if metadata.get("KeyState") not in ("PendingDeletion", "PendingReplicaDeletion"):
                    return key_id
            if not response.get("Truncated") or not response.get("NextMarker"):
                return None
            params = {"Limit": 1000, "Marker": response["NextMarker"]}

    # ---- the writes that need care ---------------------------------------------------

    def _create_key(self, change: Change, params: dict[str, Any]) -> str:
        tags = {t["TagKey"]: t["TagValue"] for t in params.get("Tags", [])}
        stack, name = tags[TAG_STACK], tags[TAG_KEY]
        created = self._create_key_once(change, params, stack, name)
        return self._settle_duplicates(change, created, stack, name)

    def _create_key_once(
        self, change: Change, params: dict[str, Any], stack: str, name: str
    ) -> str:
        last: AmbiguousOutcome | None = None
        for _attempt in range(MAX_CREATE_ATTEMPTS):
            try:
                response = self._call_consistent(change, "CreateKey", params)
                return str(response["KeyMetadata"]["KeyId"])
            except AmbiguousOutcome as exc:
                last = exc
            # The key may exist although the answer was lost: find it before creating again.
            # The lookup is eventually consistent too, so look more than once.
            lookups = self._retry.delays()
            for lookup in range(LOOKUPS_AFTER_AMBIGUOUS_CREATE):
                if lookup:
                    self._notify(change, f"{last}; key not found yet, looking again")
                    self._retry.sleep(next(lookups, 0.0))
                found = self._find_key(change, stack, name)
                if found is not None:
                    self._notify(change, f"CreateKey answer was lost; adopted key {found}")
                    return found
            self._notify(change, f"{last}; no such key exists, creating it again")
        assert last is not None
        raise CallFailed("CreateKey", "AmbiguousOutcome", last.detail)

    def _replica_state(self, change: Change, key_id: str) -> KeyState | None:
        """The state of the replica in `change`'s Region; None if there is none (yet)."""
        try:
            metadata = self._call(change, "DescribeKey", {"KeyId": key_id})["KeyMetadata"]
        except KmsCallError as exc:
            if exc.code == "NotFoundException":
                return None
            raise
        config = metadata.get("MultiRegionConfiguration") or {}
        if config.get("MultiRegionKeyType") != "REPLICA":
            return None
        try:
            return KeyState(metadata.get("KeyState"))
        except ValueError:
            return KeyState.UNAVAILABLE

    def _replicate_key(self, change: Change, params: dict[str, Any]) -> None:
        """ReplicateKey, crash-safe: a replica that exists already (an earlier apply whose
        answer was lost) is taken as it is; then wait while the new replica is Creating,
        since KMS refuses most changes to it until then."""
        key_id = bare_key_id(str(params["KeyId"]))
        state = self._replica_state(change, key_id)
        attempts = 0
        while state is None:
            attempts += 1
            try:
                self._call_consistent(change, "ReplicateKey", params)
            except AmbiguousOutcome as exc:
                if attempts >= MAX_CREATE_ATTEMPTS:
                    raise CallFailed("ReplicateKey", "AmbiguousOutcome", exc.detail) from exc
                self._notify(change, f"{exc}; looking for the replica before trying again")
            except KmsCallError as exc:
                if exc.code != "AlreadyExistsException":
                    raise
            state = self._replica_state(change, key_id)
            if state is None and attempts >= MAX_CREATE_ATTEMPTS:
                raise CallFailed("ReplicateKey", "NotFound", "the replica did not appear")
        with self._lock:
            self._created.add(key_id)
        delays = self._retry.delays()
        while state is KeyState.CREATING:
            delay = next(delays, None)
            if delay is None:
                raise CallFailed(
                    "ReplicateKey",
                    "StillCreating",
                    f"the replica of {key_id} is still Creating; run apply again later",
                )
            self._notify(change, f"replica of {key_id} is Creating; waiting {delay:.1f}s")
            self._retry.sleep(delay)
            state = self._replica_state(change, key_id)

    def _settle_duplicates(self, change: Change, mine: str, stack: str, name: str) -> str:
        """The key to go on with after creating `mine`: if another run created a key with the
        same stack and name meanwhile, the one the aliases and grants use, else the older
        (ties: the smaller id — every racing run picks the same). When it is not `mine`,
        `mine` is released: tagged kmsplan:duplicate-of first, then its ownership tags
        removed, so it is never left unowned and unmarked. Only this run's own key is ever
        released here; the next plan releases any other surplus."""
        others = self._siblings(change, stack, name, mine)
        own = self._rank(change, mine) if others else None
        if own is None:
            return mine
        winner = min([own, *others])[2]
        if winner == mine:
            return mine
        self._call_consistent(
            change,
            "TagResource",
            {"KeyId": mine, "Tags": [{"TagKey": TAG_DUPLICATE_OF, "TagValue": winner}]},
        )
        self._call_consistent(
            change, "UntagResource", {"KeyId": mine, "TagKeys": [TAG_STACK, TAG_KEY]}
        )
        self._notify(
            change,
            f"another run created key {winner} for {change.address} meanwhile: released key "
            f"{mine} that this run created ({TAG_DUPLICATE_OF}={winner}, never deleted); "
            f"going on with {winner}",
        )
        return winner

    def _siblings(
        self, change: Change, stack: str, name: str, mine: str
    ) -> list[tuple[int, str, str]]:
        """The ranks of the other usable keys tagged `stack`/`name` (see `_rank`)."""
        if self._find_siblings is None:
            return []
        try:
            found = [k for k in self._find_siblings(stack, name) if k != bare_key_id(mine)]
        except KmsplanError as exc:
            # A safeguard only (tag:GetResources may not be allowed): the next plan releases
            # any duplicate all the same.
            self._notify(change, f"could not look for keys other runs created ({exc})")
            return []
        ranks: list[tuple[int, str, str]] = []
        for key_id in found:
            try:
                # The tag index lags: the key's own tags say whether it is still a sibling.
                tags = self._tags(change, key_id)
                if tags.get(TAG_STACK) != stack or tags.get(TAG_KEY) != name:
                    continue
                rank = self._rank(change, key_id)
            except KmsCallError:
                continue  # gone, or not ours to read
            if rank is not None:
                ranks.append(rank)
        return ranks

    def _rank(self, change: Change, key_id: str) -> tuple[int, str, str] | None:
        """How a key ranks to be kept, smaller first: (-uses by aliases and grants, creation
        date, id) — the differ's order (`match_keys`). None for a key pending deletion."""
        metadata = self._describe(change, key_id)
        if metadata.get("KeyState") in ("PendingDeletion", "PendingReplicaDeletion"):
            return None
        aliases = self._call_consistent(change, "ListAliases", {"KeyId": key_id})
        uses = len(aliases.get("Aliases", [])) + sum(1 for _ in self._grants(change, key_id))
        created = metadata.get("CreationDate")
        when = (
            created.astimezone(timezone.utc).isoformat(timespec="microseconds")
            if isinstance(created, datetime)
            else str(created or "")
        )
        return (-uses, when, key_id)

    def _create_grant(self, change: Change, params: dict[str, Any]) -> None:
        key_id = str(params["KeyId"])

        def exists() -> bool:
            return any(grant_matches(live, params) for live in self._grants(change, key_id))

        if exists():
            return
        last: AmbiguousOutcome | None = None
        for _attempt in range(MAX_CREATE_ATTEMPTS):
            try:
                # The answer holds a grant token: it is dropped here, never logged or kept.
                self._call_consistent(change, "CreateGrant", params)
                return
            except AmbiguousOutcome as exc:
                last = exc
            if exists():
                return
        assert last is not None
        raise CallFailed("CreateGrant", "AmbiguousOutcome", last.detail)

    def _create_alias(self, change: Change, params: dict[str, Any]) -> None:
        try:
            self._call_consistent(change, "CreateAlias", params)
        except KmsCallError as exc:
            if exc.code != "AlreadyExistsException":
                raise
            alias, target = str(params["AliasName"]), bare_key_id(str(params["TargetKeyId"]))
            try:
                current = str(self._describe(change, alias)["KeyId"])
            except KmsCallError:
                current = "(unknown)"
            if current != target:
                raise CallFailed(
                    "CreateAlias",
                    "AlreadyExistsException",
                    f"{alias} already exists and points at key {current}, not {target};"
                    " run plan again",
                ) from exc

    def _schedule_key_deletion(self, change: Change, params: dict[str, Any]) -> None:
        key_id = str(params["KeyId"])
        if self._gate_recheck:
            tags = self._tags(change, key_id)
            protection = tags.get(TAG_PROTECTION)
            if deletion_protected(tags):
                shown = "missing" if protection is None else f'"{protection}"'
                raise CallFailed(
                    "ScheduleKeyDeletion",
                    "DeletionProtected",
                    f"refused by the safety gate: key {key_id} has {TAG_PROTECTION} {shown}"
                    ' on the live key (must be "false"); set deletion.protected: false for'
                    " this key, apply that, then delete",
                )
            if tags.get(TAG_STACK) != self._stack:
                raise CallFailed(
                    "ScheduleKeyDeletion",
                    "NotManaged",
                    f"refused by the safety gate: key {key_id} is not tagged"
                    f" {TAG_STACK}={self._stack} any more",
                )
        if self._key_state(change, key_id) is KeyState.PENDING_DELETION:
            return
        try:
            self._call(change, "ScheduleKeyDeletion", params)
        except KmsCallError as exc:
            if not (exc.code == "KMSInvalidStateException" and "pending deletion" in exc.message):
                raise
        # A 200 is not proof: confirm the key really is pending deletion now.
        delays = self._retry.delays()
        for read in range(CONFIRM_READS):
            state = self._key_state(change, key_id)
            if state is KeyState.PENDING_DELETION:
                return
            delay = next(delays, None)
            if delay is None or read == CONFIRM_READS - 1:
                break
            self._retry.sleep(delay)
        raise CallFailed(
            "ScheduleKeyDeletion",
            "NotScheduled",
            f"KMS accepted the call but key {key_id} is {state.value if state else 'unknown'},"
            " not PendingDeletion",
        )
