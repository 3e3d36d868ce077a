"""Stack locks against the moto server over HTTP: S3 objects created with If-None-Match: *,
DynamoDB items created with a condition expression; waiting, refusing, releasing on every way
out of a run, and force-unlock. (The runs of several processes at once are in
test_concurrent_runs.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from apply_support import ACCOUNT, REGION, client, kmsplan, stack_keys, write_manifest
from lock_support import BUCKET, lock_objects, make_bucket, make_table

from kmsplan.aws.lock import LockError, LockInfo, LockStore, LockUrl, acquire, lock_store

pytestmark = pytest.mark.integration

STACK = "locked"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture(params=["s3", "dynamodb"])
def url(request: pytest.FixtureRequest, endpoint: str) -> str:
    return make_bucket(endpoint) if request.param == "s3" else make_table(endpoint)


def store_for(url: str, endpoint: str) -> LockStore:
    return lock_store(
        LockUrl.parse(url),
        account_id=ACCOUNT,
        region=REGION,
        stack=STACK,
        profile=None,
        endpoint_url=endpoint,
    )


def info(command: str = "apply") -> LockInfo:
    return LockInfo.new(
        stack=STACK, who=f"arn:aws:iam::{ACCOUNT}:user/ci", command=command, now=NOW
    )


# ---- the stores ----------------------------------------------------------------------------


def test_a_lock_is_created_once_and_names_its_holder(url: str, endpoint: str) -> None:
    store = store_for(url, endpoint)
    first, second = info(), info("plan --out")

    assert store.put(first) is True
    assert store.put(second) is False  # the condition holds: the first run keeps it
    assert store.read() == first
    assert len(lock_objects(endpoint)) == 1


def test_a_lock_is_removed_only_with_its_own_id(url: str, endpoint: str) -> None:
    store = store_for(url, endpoint)
    held = info()
    store.put(held)

    assert store.delete("another-id") is False
    assert store.read() == held
    assert store.delete(held.id) is True
    assert store.read() is None
    assert lock_objects(endpoint) == []


def test_the_s3_lock_is_one_object_per_account_region_and_stack(endpoint: str) -> None:
    url = make_bucket(endpoint)
    store_for(url, endpoint).put(info())

    [key] = lock_objects(endpoint)
    assert key == f"kmsplan/{ACCOUNT}/{REGION}/{STACK}.lock"
    body = client(endpoint, "s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert set(json.loads(body)) == {
        "id",
        "stack",
        "who",
        "host",
        "pid",
        "version",
        "command",
        "created",
    }


def test_the_s3_lock_of_another_run_taken_since_it_was_read_is_not_removed(
    endpoint: str,
) -> None:
    # The lock is read, then replaced by another run's before the conditional delete: the
    # ETag no longer matches and nothing is removed.
    url = make_bucket(endpoint)
    store = store_for(url, endpoint)
    mine = info()
    store.put(mine)
    s3 = client(endpoint, "s3")
    key = f"kmsplan/{ACCOUNT}/{REGION}/{STACK}.lock"
    theirs = info()
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"id": mine.id, "who": "x"}).encode())

    assert s3.head_object(Bucket=BUCKET, Key=key)["ETag"] != ""
    assert store.delete(theirs.id) is False
    assert lock_objects(endpoint) == [key]


# ---- waiting -------------------------------------------------------------------------------


class FakeTime:
    """A clock that advances only when the waiting loop sleeps; `on_sleep` runs each time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: list[Any] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep.pop(0)()


def test_a_held_lock_is_refused_at_once_with_timeout_0_naming_the_holder(
    url: str, endpoint: str
) -> None:
    store = store_for(url, endpoint)
    holder = info()
    store.put(holder)
    time = FakeTime()

    with pytest.raises(LockError) as raised:
        acquire(
            store,
            info(),
            timeout=0,
            on_wait=lambda _: None,
            clock=time.clock,
            sleep=time.sleep,
            now=lambda: NOW + timedelta(minutes=3, seconds=12),
        )

    message = str(raised.value)
    assert f"is held (--lock-timeout 0): lock id {holder.id}, held by {holder.who}" in message
    assert f"(pid {holder.pid}, kmsplan {holder.version}, apply) since {holder.created}" in message
    assert "(for 3m12s)" in message
    assert f"kmsplan force-unlock {holder.id} PATH..." in message
    assert time.sleeps == []
    assert store.read() == holder


def test_a_waiting_run_takes_the_lock_once_it_is_released(url: str, endpoint: str) -> None:
    store = store_for(url, endpoint)
    holder, waiter = info(), info()
    store.put(holder)
    time = FakeTime()
    time.on_sleep = [lambda: None, lambda: store.delete(holder.id)]
    said: list[str] = []

    acquire(
        store,
        waiter,
        timeout=60,
        on_wait=said.append,
        clock=time.clock,
        sleep=time.sleep,
        now=lambda: NOW,
    )

    assert store.read() == waiter
    assert time.sleeps == [0.5, 1.0]  # polling backs off, bounded by MAX_POLL_SECONDS
    assert len(said) == 1
    assert said[0].startswith(f"Waiting for the stack lock {store.where}: lock id {holder.id}")
    assert said[0].endswith("waited 0s of 1m00s...")


def test_a_run_gives_up_after_its_timeout_and_says_how_long_it_waited(
    url: str, endpoint: str
) -> None:
    store = store_for(url, endpoint)
    holder = info()
    store.put(holder)
    time = FakeTime()
    said: list[str] = []

    with pytest.raises(LockError, match=r"is held after waiting 30s: lock id "):
        acquire(
            store,
            info(),
            timeout=30,
            on_wait=said.append,
            clock=time.clock,
            sleep=time.sleep,
            now=lambda: NOW,
        )

    assert sum(time.sleeps) == pytest.approx(30)
    assert max(time.sleeps) == 5.0
    assert 2 <= len(said) <= 4  # about every 10 s, not at every poll
    assert store.read() == holder


# ---- a run holds the lock and releases it on every way out ---------------------------------


@pytest.fixture
def manifest(tmp_path: Path) -> Iterator[Path]:
    yield write_manifest(tmp_path / "stack.yaml", STACK, {"orders": {}})


def hold_lock(url: str, endpoint: str) -> LockInfo:
    holder = info()
    assert store_for(url, endpoint).put(holder)
    return holder


def test_apply_with_a_held_lock_is_refused_before_reading_and_changes_nothing(
    url: str, endpoint: str, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = hold_lock(url, endpoint)

    code, out, err = kmsplan(
        capsys, endpoint, "apply", str(manifest), "--auto-approve", "--lock", url
    )

    assert code == 1
    assert out == ""  # refused before the plan was made
    assert f"is held (--lock-timeout 0): lock id {holder.id}, held by {holder.who}" in err
    assert stack_keys(endpoint, STACK) == {}
    assert store_for(url, endpoint).read() == holder


def test_the_manifest_names_the_lock_and_lock_none_disables_it(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_bucket(endpoint)
    manifest = write_manifest(tmp_path / "stack.yaml", STACK, {"orders": {}}, lock=url)
    hold_lock(url, endpoint)

    refused, _, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    applied, _, _ = kmsplan(
        capsys, endpoint, "apply", str(manifest), "--auto-approve", "--lock", "none"
    )

    assert refused == 1 and "is held" in err
    assert applied == 0
    assert list(stack_keys(endpoint, STACK)) == ["orders"]


def test_a_successful_apply_leaves_no_lock(
    url: str, endpoint: str, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve", "--lock", url)

    assert code == 0
    assert list(stack_keys(endpoint, STACK)) == ["orders"]
    assert lock_objects(endpoint) == []


def test_a_refused_approval_releases_the_lock(
    url: str, endpoint: str, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # stdin is not a terminal and --auto-approve is missing: apply refuses after planning.
    code, _, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--lock", url)

    assert code == 1
    assert "refusing to apply without approval" in err
    assert lock_objects(endpoint) == []


def test_a_failed_change_releases_the_lock(
    url: str, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A grant to a principal that does not exist: CreateGrant fails, the apply fails.
    manifest = write_manifest(
        tmp_path / "stack.yaml",
        STACK,
        {
            "orders": {
                "grants": [
                    {
                        "name": "ghost",
                        "grantee": "arn:aws:iam::123456789012:role/ghost",
                        "operations": ["Decrypt"],
                    }
                ]
            }
        },
    )
    code, _, _ = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve", "--lock", url)

    assert code == 1
    assert lock_objects(endpoint) == []


@pytest.mark.parametrize("raised", [RuntimeError("boom"), KeyboardInterrupt()])
def test_an_exception_or_ctrl_c_during_apply_releases_the_lock(
    url: str,
    endpoint: str,
    manifest: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    raised: BaseException,
) -> None:
    import kmsplan.run.session as run_session

    def explode(*args: Any, **kwargs: Any) -> Any:
        assert len(lock_objects(endpoint)) == 1  # held while applying
        raise raised

    monkeypatch.setattr(run_session, "apply_plan", explode)

    code, _, _ = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve", "--lock", url)

    assert code == 1
    assert lock_objects(endpoint) == []
    assert stack_keys(endpoint, STACK) == {}


def test_plan_out_holds_the_lock_while_it_reads_and_plain_plan_does_not(
    url: str, endpoint: str, manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = hold_lock(url, endpoint)
    saved = tmp_path / "plan.json"

    plain, _, _ = kmsplan(capsys, endpoint, "plan", str(manifest), "--lock", url)
    refused, _, err = kmsplan(
        capsys, endpoint, "plan", str(manifest), "--lock", url, "--out", str(saved)
    )
    store_for(url, endpoint).delete(holder.id)
    saved_ok, _, _ = kmsplan(
        capsys, endpoint, "plan", str(manifest), "--lock", url, "--out", str(saved)
    )

    assert plain == 0
    assert refused == 1 and f"lock id {holder.id}" in err
    assert saved_ok == 0 and saved.is_file()
    assert lock_objects(endpoint) == []


def test_an_invalid_lock_url_is_refused_before_anything_is_read(
    endpoint: str, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = kmsplan(
        capsys, endpoint, "apply", str(manifest), "--auto-approve", "--lock", "ftp://somewhere"
    )

    assert code == 1
    assert out == ""
    assert err == (
        "error: invalid lock URL 'ftp://somewhere': expected s3://BUCKET/PREFIX, "
        "dynamodb://TABLE, or none for no lock\n"
    )
    assert stack_keys(endpoint, STACK) == {}


def test_a_lock_in_the_manifest_that_is_not_a_lock_url_is_a_validation_error(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "stack.yaml"
    manifest.write_text('{"version": 1, "stack": "s", "lock": "s3:/bucket", "keys": {}}')

    code, _, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")

    assert code == 1
    assert err == (
        f'{manifest}:1:38: error: lock: "s3:/bucket" is not valid (s3://BUCKET/PREFIX or '
        "dynamodb://TABLE)\n"
    )
    assert client(endpoint).list_keys()["Keys"] == []


# ---- force-unlock --------------------------------------------------------------------------


def test_force_unlock_removes_the_lock_with_its_id_and_says_what_it_removed(
    url: str, endpoint: str, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = hold_lock(url, endpoint)

    code, out, _ = kmsplan(
        capsys, endpoint, "force-unlock", holder.id, str(manifest), "--lock", url, "--force"
    )

    assert code == 0
    assert (
        f"Removed the stack lock {store_for(url, endpoint).where} (lock id {holder.id}, "
        f"held by {holder.who} on {holder.host}, pid {holder.pid}, apply, since "
        f"{holder.created})." in out
    )
    assert lock_objects(endpoint) == []


def test_force_unlock_with_another_id_removes_nothing(
    url: str, endpoint: str, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = hold_lock(url, endpoint)

    code, _, err = kmsplan(
        capsys, endpoint, "force-unlock", "not-the-id", str(manifest), "--lock", url, "--force"
    )

    assert code == 1
    assert f"is held with another id: lock id {holder.id}" in err
    assert err.rstrip().endswith("not not-the-id. Nothing was removed")
    assert store_for(url, endpoint).read() == holder


def test_force_unlock_without_a_terminal_needs_force(
    url: str, endpoint: str, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = hold_lock(url, endpoint)

    code, _, err = kmsplan(
        capsys, endpoint, "force-unlock", holder.id, str(manifest), "--lock", url
    )

    assert code == 1
    assert "re-run with --force. Nothing was removed" in err
    assert store_for(url, endpoint).read() == holder


def test_force_unlock_asks_for_yes(
    url: str,
    endpoint: str,
    manifest: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kmsplan.commands.apply as apply_command

    holder = hold_lock(url, endpoint)
    monkeypatch.setattr(apply_command, "stdin_is_terminal", lambda: True)
    monkeypatch.setattr("sys.stdin", _Lines("no\n"))

    code, _, err = kmsplan(
        capsys, endpoint, "force-unlock", holder.id, str(manifest), "--lock", url
    )

    assert code == 1
    assert "force-unlock cancelled: the answer was not 'yes'. Nothing was removed" in err
    assert store_for(url, endpoint).read() == holder


def test_force_unlock_of_a_free_lock_says_so(
    url: str, endpoint: str, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = kmsplan(
        capsys, endpoint, "force-unlock", "some-id", str(manifest), "--lock", url, "--force"
    )

    assert code == 1
    assert "is not held: nothing was removed" in err


def test_force_unlock_without_a_lock_is_a_usage_error(
    endpoint: str, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = kmsplan(capsys, endpoint, "force-unlock", "some-id", str(manifest), "--force")

    assert code == 1
    assert "the manifests name no lock (lock:) and --lock was not given" in err


class _Lines:
    """A stdin that answers with `text`."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines(keepends=True)

    def readline(self) -> str:
        return self.lines.pop(0) if self.lines else ""

    def isatty(self) -> bool:
        return True


def test_apply_of_a_saved_plan_takes_the_lock_given_with_lock(
    url: str, endpoint: str, manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "plan.json"
    planned, _, _ = kmsplan(capsys, endpoint, "plan", str(manifest), "--out", str(saved))
    holder = hold_lock(url, endpoint)

    refused, _, err = kmsplan(
        capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve", "--lock", url
    )
    store_for(url, endpoint).delete(holder.id)
    applied, _, _ = kmsplan(
        capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve", "--lock", url
    )

    assert planned == 0
    assert refused == 1 and f"lock id {holder.id}" in err
    assert applied == 0
    assert list(stack_keys(endpoint, STACK)) == ["orders"]
    assert lock_objects(endpoint) == []


def test_a_lock_removed_while_the_run_held_it_is_reported_not_fatal(
    url: str,
    endpoint: str,
    manifest: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kmsplan.run.session as run_session

    original = run_session.apply_plan
    store = store_for(url, endpoint)

    def force_unlocked_meanwhile(*args: Any, **kwargs: Any) -> Any:
        holder = store.read()
        assert holder is not None and store.delete(holder.id)
        return original(*args, **kwargs)

    monkeypatch.setattr(run_session, "apply_plan", force_unlocked_meanwhile)

    code, _, err = kmsplan(
        capsys, endpoint, "apply", str(manifest), "--auto-approve", "--lock", url
    )

    assert code == 0
    assert f"warning: the stack lock {store.where} was no longer this run's (lock id " in err
    assert list(stack_keys(endpoint, STACK)) == ["orders"]
    assert lock_objects(endpoint) == []


def test_a_stack_with_a_role_takes_its_lock_as_that_role(
    endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from apply_support import create_role

    import kmsplan.aws.lock as aws_lock

    url = make_bucket(endpoint)
    role = create_role(endpoint, "deployer")
    manifest = write_manifest(tmp_path / "stack.yaml", STACK, {"orders": {}}, lock=url, role=role)
    assumed: list[str] = []
    real_assume = aws_lock.assume

    def recording_assume(session: Any, role_: Any, **kwargs: Any) -> Any:
        assumed.append(role_.arn)
        return real_assume(session, role_, **kwargs)

    monkeypatch.setattr(aws_lock, "assume", recording_assume)

    code, _, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")

    assert code == 0, err
    assert assumed == [role]
    assert list(stack_keys(endpoint, STACK)) == ["orders"]
    assert lock_objects(endpoint) == []


def test_apply_of_a_saved_plan_of_a_stack_with_a_role_takes_the_lock_as_that_role(
    endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from apply_support import create_role

    import kmsplan.aws.lock as aws_lock

    url = make_bucket(endpoint)
    role = create_role(endpoint, "deployer")
    manifest = write_manifest(tmp_path / "stack.yaml", STACK, {"orders": {}}, role=role)
    saved = tmp_path / "plan.json"
    planned, _, _ = kmsplan(capsys, endpoint, "plan", str(manifest), "--out", str(saved))
    assumed: list[str] = []
    real_assume = aws_lock.assume

    def recording_assume(session: Any, role_: Any, **kwargs: Any) -> Any:
        assumed.append(role_.arn)
        return real_assume(session, role_, **kwargs)

    monkeypatch.setattr(aws_lock, "assume", recording_assume)

    code, _, err = kmsplan(
        capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve", "--lock", url
    )

    assert planned == 0
    assert code == 0, err
    assert assumed == [role]
    assert list(stack_keys(endpoint, STACK)) == ["orders"]
    assert lock_objects(endpoint) == []
