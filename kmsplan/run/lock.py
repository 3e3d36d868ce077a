"""Where the stack lock goes.

Two runs against the same stack must not interleave: a plan read while another run writes is
stale the moment it is shown, and two appliers racing on one key make neither outcome the one
that was reviewed. Like Terraform's state lock, kmsplan takes a lock per stack and placement
(account and Region) in the store the stack names (``lock: s3://BUCKET/PREFIX`` or
``lock: dynamodb://TABLE``; `kmsplan.aws.lock` holds the stores).

The contract (tests/integration/test_run_lifecycle.py, test_stack_lock.py):

- taken after the account and Region guards (so a refused run locks nothing) and before the
  first read of live state;
- held through the plan, the approval prompt and every write, released after the last one;
- released on every way out: success, refusal, failure, an exception, Ctrl-C — and SIGTERM,
  which is turned into KeyboardInterrupt while the lock is held (Python does not unwind on
  SIGTERM by default), the previous handler restored afterwards.

Which lock: ``--lock URL`` if given (``--lock none``: no lock), else the manifests' ``lock:``,
else none. A command asks for the lock with `LockOptions`; no options: no lock.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from types import FrameType
from typing import Any

import click

from kmsplan.aws.lock import NO_LOCK, LockInfo, LockStore, LockUrl, acquire, lock_store
from kmsplan.errors import KmsplanError
from kmsplan.model import Placement, Role
from kmsplan.render.terminal import terminal_safe
from kmsplan.run.clients import AwsSettings


def _to_stderr(line: str) -> None:
    click.echo(terminal_safe(line), err=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockOptions:
    """What a command asks of the stack lock."""

    url: str | None = None  # --lock: a URL, "none" for no lock; None: the manifests' lock:
    timeout: float = 0  # --lock-timeout: seconds to wait for a lock another run holds
    command: str = "apply"  # said in the lock's body
    say: Callable[[str], None] = _to_stderr  # the waiting line, warnings

    def check(self) -> None:
        """Refuse a bad --lock before anything is read."""
        if self.url is not None and self.url != NO_LOCK:
            LockUrl.parse(self.url)


@dataclass(frozen=True, slots=True, kw_only=True)
class StackLock:
    """The lock one run takes: where, and what its body says of the run."""

    url: LockUrl
    options: LockOptions
    caller_arn: str
    aws: AwsSettings
    role: Role | None = None  # the stack's role:, whose credentials take the lock


def lock_url(option: str | None, declared: str | None) -> LockUrl | None:
    """The lock a run takes: ``--lock`` over the manifests' ``lock:``; None for no lock."""
    url = option if option is not None else declared
    if url is None or url == NO_LOCK:
        return None
    return LockUrl.parse(url)


def lock_for(
    options: LockOptions | None,
    declared: str | None,
    *,
    caller_arn: str,
    aws: AwsSettings,
    role: Role | None = None,
) -> StackLock | None:
    """The lock a run with `options` takes, for a stack that declares `declared`."""
    if options is None:
        return None
    url = lock_url(options.url, declared)
    if url is None:
        return None
    return StackLock(url=url, options=options, caller_arn=caller_arn, aws=aws, role=role)


def open_store(
    url: LockUrl, stack: str, placement: Placement, aws: AwsSettings, role: Role | None = None
) -> LockStore:
    """The store of `stack`'s lock in `placement`, reached with the stack's `role` if any."""
    return lock_store(
        url,
        account_id=placement.account_id,
        region=placement.region,
        stack=stack,
        profile=aws.profile,
        endpoint_url=aws.endpoint_url,
        role=role,
        session_name=f"kmsplan-{stack}",
    )


@contextlib.contextmanager
def stack_lock(stack: str, placement: Placement, lock: StackLock | None = None) -> Iterator[None]:
    """Hold `lock` for `stack` in `placement` for the duration of the block (no lock: a
    no-op). Raises LockError, naming the holder, when another run holds it past the
    timeout."""
    if lock is None:
        yield
        return
    store = open_store(lock.url, stack, placement, lock.aws, lock.role)
    info = LockInfo.new(
        stack=stack,
        who=lock.caller_arn,
        command=lock.options.command,
        now=datetime.now(timezone.utc),
    )
    acquire(store, info, timeout=lock.options.timeout, on_wait=lock.options.say)
    previous = _catch_sigterm()
    try:
        yield
    finally:
        _restore_sigterm(previous)
        _release(store, info, lock.options.say)


def _release(store: LockStore, info: LockInfo, say: Callable[[str], None]) -> None:
    """Release the lock this run holds; say so if it cannot be released."""
    try:
        released = store.delete(info.id)
    except KmsplanError as exc:
        say(
            f"warning: could not release the stack lock {store.where} ({exc}); remove it "
            f"with kmsplan force-unlock {info.id} PATH..."
        )
        return
    if not released:
        say(
            f"warning: the stack lock {store.where} was no longer this run's (lock id "
            f"{info.id}): it was removed or taken over meanwhile"
        )


def _catch_sigterm() -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set signal handlers
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
