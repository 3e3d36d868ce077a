"""Stack locks: two runs of one stack never read and write it at the same time.

A lock is one object per stack (account, Region and stack) in a store the stack names:

- ``s3://BUCKET/PREFIX``: the object ``PREFIX/ACCOUNT/REGION/STACK.lock``, created with a
  conditional PutObject (``If-None-Match: *``, as Terraform's S3 backend does) and removed
  with a conditional DeleteObject (``If-Match`` the ETag of the lock that was read);
- ``dynamodb://TABLE``: the item ``LockID = kmsplan/ACCOUNT/REGION/STACK`` of a table whose
  partition key is the string ``LockID`` (Terraform's lock table fits), created with
  ``attribute_not_exists(LockID)`` and removed only while its ``LockIdent`` is the lock's id.

The lock's body says who holds it: the caller's ARN, host, process id, kmsplan version,
command, start time and a lock id (`LockInfo`). A run that finds the lock held waits up to its
timeout, polling at bounded intervals, and then fails naming the holder (`acquire`).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Protocol

import boto3
from botocore.config import Config

from kmsplan import __version__
from kmsplan.aws.client import assume, aws_errors, call
from kmsplan.errors import AwsError, KmsplanError
from kmsplan.model import Role

if TYPE_CHECKING:
    from botocore.client import BaseClient

# ``--lock none``: no lock, even if the manifests name one.
NO_LOCK = "none"

_S3 = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>[^\s]*))?$")
_DYNAMODB = re.compile(r"^dynamodb://(?P<table>[A-Za-z0-9_.-]{3,255})$")

# Answers meaning "someone else holds it" (S3 answers 409 to a conditional write racing
# another one on the same key).
_S3_HELD = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_DYNAMODB_HELD = frozenset({"ConditionalCheckFailedException"})
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})

# Waiting for a held lock: poll at most every this many seconds (and at first more often).
FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 5.0


class LockError(KmsplanError):
    """The stack lock could not be taken, or is not the one the user named."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LockInfo:
    """Who holds a stack lock: the lock's body."""

    id: str
    stack: str
    who: str  # the caller's ARN
    host: str
    pid: int
    version: str  # kmsplan's
    command: str  # "apply", "plan --out"
    created: str  # ISO 8601, UTC

    @classmethod
    def new(cls, *, stack: str, who: str, command: str, now: datetime) -> LockInfo:
        return cls(
            id=str(uuid.uuid4()),
            stack=stack,
            who=who,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            command=command,
            created=now.astimezone(timezone.utc).isoformat(timespec="seconds"),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LockInfo:
        """A lock body read back; a body kmsplan did not write still names its id."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}

        def field(name: str, default: str = "?") -> str:
            value = data.get(name, default)
            return value if isinstance(value, str) else str(value)

        pid = data.get("pid", 0)
        return cls(
            id=field("id"),
            stack=field("stack"),
            who=field("who"),
            host=field("host"),
            pid=pid if isinstance(pid, int) else 0,
            version=field("version"),
            command=field("command"),
            created=field("created", ""),
        )

    def held_for(self, now: datetime) -> str:
        """How long the lock has been held, for people: "3m12s"."""
        try:
            since = datetime.fromisoformat(self.created)
        except ValueError:
            return "an unknown time"
        return _duration((now - since).total_seconds())

    def describe(self, now: datetime) -> str:
        """``lock id X, held by ARN on HOST (pid N, kmsplan V, apply) since T (for 3m12s)``."""
        return (
            f"lock id {self.id}, held by {self.who} on {self.host} (pid {self.pid}, kmsplan "
            f"{self.version}, {self.command}) since {self.created or '?'} "
            f"(for {self.held_for(now)})"
        )


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


# ---------------------------------------------------------------------------------------------
# Where a lock lives


@dataclass(frozen=True, slots=True, kw_only=True)
class LockUrl:
    """A parsed lock URL: ``s3://BUCKET/PREFIX`` or ``dynamodb://TABLE``."""

    scheme: str  # "s3" or "dynamodb"
    container: str  # the bucket or the table
    prefix: str = ""  # S3 only, without slashes at either end

    @classmethod
    def parse(cls, url: str) -> LockUrl:
        s3 = _S3.match(url)
        if s3 is not None:
            return cls(scheme="s3", container=s3["bucket"], prefix=(s3["prefix"] or "").strip("/"))
        table = _DYNAMODB.match(url)
        if table is not None:
            return cls(scheme="dynamodb", container=table["table"])
        raise LockError(
            f"invalid lock URL {url!r}: expected s3://BUCKET/PREFIX, dynamodb://TABLE, or "
            f"{NO_LOCK} for no lock"
        )

    def __str__(self) -> str:
        if self.scheme == "s3":
            return (
                f"s3://{self.container}/{self.prefix}" if self.prefix else f"s3://{self.container}"
            )
        return f"dynamodb://{self.container}"

    def where(self, *, account_id: str, region: str, stack: str) -> str:
        """The lock's own address: the S3 object or the DynamoDB item, for messages."""
        name = _lock_name(self, account_id=account_id, region=region, stack=stack)
        if self.scheme == "s3":
            return f"s3://{self.container}/{name}"
        return f"dynamodb://{self.container} (LockID {name})"


def _lock_name(url: LockUrl, *, account_id: str, region: str, stack: str) -> str:
    if url.scheme == "s3":
        parts = [p for p in (url.prefix, account_id, region) if p]
        return "/".join([*parts, f"{stack}.lock"])
    return f"kmsplan/{account_id}/{region}/{stack}"


class LockStore(Protocol):
    """One stack's lock in its store."""

    where: str

    def put(self, info: LockInfo) -> bool:
        """Create the lock holding `info`; False if it is already held."""

    def read(self) -> LockInfo | None:
        """The lock's holder, or None when the lock is free."""

    def delete(self, lock_id: str) -> bool:
        """Remove the lock if its id is `lock_id`; False if it is held by another id or free."""


class S3LockStore:
    def __init__(self, client: BaseClient, url: LockUrl, name: str) -> None:
        self.client = client
        self.bucket = url.container
        self.key = name
        self.where = f"s3://{self.bucket}/{name}"

    def put(self, info: LockInfo) -> bool:
        try:
            call(
                self.client,
                "PutObject",
                Bucket=self.bucket,
                Key=self.key,
                Body=info.to_json().encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except AwsError as exc:
            if exc.code in _S3_HELD:
                return False
            raise
        return True

    def _get(self) -> tuple[LockInfo, str] | None:
        try:
            answer = call(self.client, "GetObject", Bucket=self.bucket, Key=self.key)
            with aws_errors("GetObject"):
                body = answer["Body"].read().decode("utf-8", "replace")
        except AwsError as exc:
            if exc.code in _NOT_FOUND:
                return None
            raise
        return LockInfo.from_json(body), str(answer.get("ETag", ""))

    def read(self) -> LockInfo | None:
        found = self._get()
        return None if found is None else found[0]

    def delete(self, lock_id: str) -> bool:
        found = self._get()
        if found is None or found[0].id != lock_id:
            return False
        etag = found[1]
        try:
            # Only the lock that was read: never one taken by another run meanwhile.
            call(self.client, "DeleteObject", Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except AwsError as exc:
            if exc.code in _S3_HELD or exc.code in _NOT_FOUND:
                return False
            raise
        return True


class DynamoDbLockStore:
    def __init__(self, client: BaseClient, url: LockUrl, name: str) -> None:
        self.client = client
        self.table = url.container
        self.lock_name = name
        self.where = f"dynamodb://{self.table} (LockID {name})"

    def put(self, info: LockInfo) -> bool:
        try:
            call(
                self.client,
                "PutItem",
                TableName=self.table,
                Item={
                    "LockID": {"S": self.lock_name},
                    "LockIdent": {"S": info.id},
                    "Info": {"S": info.to_json()},
                },
                ConditionExpression="attribute_not_exists(LockID)",
            )
        except AwsError as exc:
            if exc.code in _DYNAMODB_HELD:
                return False
            raise
        return True

    def read(self) -> LockInfo | None:
        answer = call(
            self.client,
            "GetItem",
            TableName=self.table,
            Key={"LockID": {"S": self.lock_name}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        if not item:
            return None
        info = LockInfo.from_json(str(item.get("Info", {}).get("S", "")))
        ident = str(item.get("LockIdent", {}).get("S", info.id))
        return info if info.id == ident else LockInfo.from_json(json.dumps({"id": ident}))

    def delete(self, lock_id: str) -> bool:
        try:
            call(
                self.client,
                "DeleteItem",
                TableName=self.table,
                Key={"LockID": {"S": self.lock_name}},
                ConditionExpression="LockIdent = :id",
                ExpressionAttributeValues={":id": {"S": lock_id}},
            )
        except AwsError as exc:
            if exc.code in _DYNAMODB_HELD:
                return False
            raise
        return True


def lock_store(
    url: LockUrl,
    *,
    account_id: str,
    region: str,
    stack: str,
    profile: str | None,
    endpoint_url: str | None,
    role: Role | None = None,
    session_name: str = "kmsplan",
) -> LockStore:
    """The store of `stack`'s lock, with the credentials the run plans and applies with (the
    stack's `role`, assumed, when it has one). `endpoint_url` (``--endpoint-url``) applies
    here as to every other service: local emulators serve S3 and DynamoDB from one address."""
    name = _lock_name(url, account_id=account_id, region=region, stack=stack)
    config = Config(
        region_name=region,
        retries={"mode": "standard", "total_max_attempts": 5},
        user_agent_extra=f"kmsplan/{__version__}",
        # An emulator at an IP address serves buckets by path, not by host name.
        s3={"addressing_style": "path"} if endpoint_url else {},
    )
    with aws_errors("create the lock's client"):
        session = boto3.session.Session(profile_name=profile)
    if role is not None:
        session = assume(
            session,
            role,
            region=region,
            endpoint_url=endpoint_url,
            session_name=role.session_name or session_name,
        )
    with aws_errors("create the lock's client"):
        if url.scheme == "s3":
            s3 = session.client("s3", config=config, endpoint_url=endpoint_url)
            return S3LockStore(s3, url, name)
        dynamodb = session.client("dynamodb", config=config, endpoint_url=endpoint_url)
        return DynamoDbLockStore(dynamodb, url, name)


# ---------------------------------------------------------------------------------------------
# Taking a lock


def acquire(
    store: LockStore,
    info: LockInfo,
    *,
    timeout: float,
    on_wait: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> None:
    """Take the lock for `info`, waiting up to `timeout` seconds while another run holds it.

    While waiting, `on_wait` gets a progress line (at the first wait, then about every 10
    seconds). Raises LockError naming the holder and how long it has held the lock once the
    timeout has passed (at once when `timeout` is 0).
    """
    deadline = clock() + timeout
    interval = FIRST_POLL_SECONDS
    last_said = -1e9
    while not store.put(info):
        holder = store.read()
        if holder is None:
            # Released between the put and the read: try again at once.
            holder = None if store.put(info) else store.read()
            if holder is None:
                return
        remaining = deadline - clock()
        if remaining <= 0:
            raise LockError(_held_message(store, holder, now(), timeout))
        if clock() - last_said >= 10:
            waited = timeout - remaining
            on_wait(
                f"Waiting for the stack lock {store.where}: {holder.describe(now())}; "
                f"waited {_duration(waited)} of {_duration(timeout)}..."
            )
            last_said = clock()
        sleep(min(interval, remaining))
        interval = min(interval * 2, MAX_POLL_SECONDS)


def _held_message(store: LockStore, holder: LockInfo, now: datetime, timeout: float) -> str:
    waited = f"after waiting {_duration(timeout)}" if timeout > 0 else "(--lock-timeout 0)"
    return (
        f"the stack lock {store.where} is held {waited}: {holder.describe(now)}. Wait for that "
        "run to finish (--lock-timeout SECONDS waits for it); if it died, remove its lock with "
        f"kmsplan force-unlock {holder.id} PATH... . Nothing was changed"
    )
