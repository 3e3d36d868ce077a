"""Several real `kmsplan` processes at once against the moto server (S3, DynamoDB and KMS over
HTTP on 127.0.0.1): with a stack lock they take turns; a run at its approval prompt holds the
lock; a killed run's lock is removed by force-unlock; without a lock the race still ends with
one owned key per name and every surplus key released, none deleted.

Every process is bounded in time (RUN_TIMEOUT) and killed by the test that started it if it
outlives it.

moto honours If-None-Match: * on PutObject and DynamoDB condition expressions, but (moto
5.2) checks and writes without a lock of its own: two requests arriving within the same few
microseconds could both pass. S3 and DynamoDB themselves are atomic; here the window is far
smaller than the time between the runs' requests.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apply_support import aliases, client, stack_keys, tags_of, write_manifest
from lock_support import lock_objects, make_bucket, make_table

pytestmark = pytest.mark.integration

STACK = "together"
RUN_TIMEOUT = 120  # seconds: a run that takes longer has hung
NAMES = ("orders", "payments")
# The last line apply prints before it reads the answer (the prompt itself may stay buffered).
PROMPT = "Only 'yes' will be accepted."


def command(endpoint: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "kmsplan.cli", *args, "--endpoint-url", endpoint]


def manifest(tmp_path: Path, **top: Any) -> Path:
    keys = {name: {"aliases": [f"alias/{STACK}/{name}"]} for name in NAMES}
    return write_manifest(tmp_path / "stack.yaml", STACK, keys, **top)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes a test starts; any still running at its end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def start(
    processes: list[subprocess.Popen[bytes]], argv: list[str], **kwargs: Any
) -> subprocess.Popen[bytes]:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    process = subprocess.Popen(argv, **kwargs)
    processes.append(process)
    return process


def finish(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=RUN_TIMEOUT)
    return process.returncode, (out or b"").decode(), (err or b"").decode()


class Terminal:
    """A pseudo-terminal for one process: it sees a terminal on stdin and stdout (so apply
    asks for 'yes'), and the test reads what it prints and answers."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.seen = ""

    def start(self, processes: list[subprocess.Popen[bytes]], argv: list[str]) -> Any:
        process = start(
            processes, argv, stdin=self.slave, stdout=self.slave, stderr=subprocess.PIPE
        )
        os.close(self.slave)
        return process

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"never saw {text!r}; saw {self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the process is gone: the terminal is closed
                    chunk = b""
                assert chunk, f"the process ended before {text!r}; saw {self.seen!r}"
                self.seen += chunk.decode(errors="replace")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> None:
        os.close(self.master)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    tty = Terminal()
    yield tty
    tty.close()


def lock_url(kind: str, endpoint: str) -> str:
    return make_bucket(endpoint) if kind == "s3" else make_table(endpoint)


def owned_keys(endpoint: str) -> dict[str, list[str]]:
    return {name: [k["KeyId"] for k in keys] for name, keys in stack_keys(endpoint, STACK).items()}


def pending_deletion(endpoint: str) -> list[str]:
    kms = client(endpoint)
    return [
        k["KeyId"]
        for k in kms.list_keys()["Keys"]
        if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    ]


@pytest.mark.parametrize("kind", ["s3", "dynamodb"])
def test_three_concurrent_applies_with_a_lock_take_turns_and_all_succeed(
    kind: str, tmp_path: Path, endpoint: str, processes: list[Any]
) -> None:
    url = lock_url(kind, endpoint)
    path = manifest(tmp_path, lock=url)
    argv = command(
        endpoint,
        "apply",
        str(path),
        "--auto-approve",
        "--no-color",
        "--lock-timeout",
        str(RUN_TIMEOUT),
    )

    runs = [start(processes, argv) for _ in range(3)]
    results = [finish(run) for run in runs]

    assert [code for code, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
    # One run created the keys and aliases; the two that waited found nothing to do.
    outs = sorted(out for _, out, _ in results)
    assert sum("Apply complete: 4 added" in out for out in outs) == 1, outs  # keys, aliases
    assert sum("No changes" in out for out in outs) == 2
    keys = owned_keys(endpoint)
    assert {name: len(ids) for name, ids in keys.items()} == {name: 1 for name in NAMES}
    assert lock_objects(endpoint) == []


def test_a_second_apply_is_refused_while_the_first_waits_at_its_prompt(
    tmp_path: Path, endpoint: str, processes: list[Any], terminal: Terminal
) -> None:
    url = lock_url("s3", endpoint)
    path = manifest(tmp_path, lock=url)
    first = terminal.start(processes, command(endpoint, "apply", str(path), "--no-color"))
    terminal.wait_for(PROMPT)

    code, out, err = finish(
        start(
            processes,
            command(endpoint, "apply", str(path), "--auto-approve", "--lock-timeout", "0"),
        )
    )

    assert code == 1
    assert out == ""
    assert "is held (--lock-timeout 0): lock id " in err
    assert f"(pid {first.pid}, kmsplan " in err and ", apply) since " in err
    assert owned_keys(endpoint) == {}  # the first run has not written yet, the second never

    terminal.type("yes")
    terminal.wait_for("Apply complete: 4 added")  # read what it prints: the terminal never fills
    first_code, _, first_err = finish(first)

    assert first_code == 0, first_err
    assert {name: len(ids) for name, ids in owned_keys(endpoint).items()} == {n: 1 for n in NAMES}
    assert lock_objects(endpoint) == []


def test_sigterm_at_the_prompt_releases_the_lock(
    tmp_path: Path, endpoint: str, processes: list[Any], terminal: Terminal
) -> None:
    url = lock_url("dynamodb", endpoint)
    path = manifest(tmp_path, lock=url)
    run = terminal.start(processes, command(endpoint, "apply", str(path), "--no-color"))
    terminal.wait_for(PROMPT)
    assert len(lock_objects(endpoint)) == 1

    run.send_signal(signal.SIGTERM)
    code, _, _ = finish(run)

    assert code == 1
    assert lock_objects(endpoint) == []
    assert owned_keys(endpoint) == {}


def test_a_killed_run_leaves_its_lock_and_force_unlock_removes_it(
    tmp_path: Path, endpoint: str, processes: list[Any], terminal: Terminal
) -> None:
    url = lock_url("s3", endpoint)
    path = manifest(tmp_path, lock=url)
    run = terminal.start(processes, command(endpoint, "apply", str(path), "--no-color"))
    terminal.wait_for(PROMPT)

    run.kill()  # SIGKILL: nothing runs after it
    run.wait(timeout=RUN_TIMEOUT)
    [left] = lock_objects(endpoint)
    refused, _, err = finish(
        start(processes, command(endpoint, "apply", str(path), "--auto-approve"))
    )
    lock_id = err.split("lock id ", 1)[1].split(",", 1)[0]
    unlocked, out, _ = finish(
        start(processes, command(endpoint, "force-unlock", lock_id, str(path), "--force"))
    )
    applied, _, _ = finish(
        start(processes, command(endpoint, "apply", str(path), "--auto-approve"))
    )

    assert left.endswith(f"/{STACK}.lock")
    assert refused == 1 and f"(pid {run.pid}, " in err
    assert unlocked == 0
    assert f"Removed the stack lock s3://kmsplan-locks/{left} (lock id {lock_id}, " in out
    assert applied == 0
    assert lock_objects(endpoint) == []


def test_three_concurrent_applies_without_a_lock_then_one_more_end_clean(
    tmp_path: Path, endpoint: str, processes: list[Any]
) -> None:
    path = manifest(tmp_path)
    argv = command(endpoint, "apply", str(path), "--auto-approve", "--no-color")

    racing = [start(processes, argv) for _ in range(3)]
    raced = [finish(run) for run in racing]  # some may fail: an alias another run took
    final_code, final_out, final_err = finish(start(processes, argv))
    again, again_out, _ = finish(
        start(processes, command(endpoint, "plan", str(path), "--detailed-exitcode", "--no-color"))
    )

    assert final_code == 0, (final_out, final_err, raced)
    keys = owned_keys(endpoint)
    assert {name: len(ids) for name, ids in keys.items()} == {name: 1 for name in NAMES}
    targets = aliases(endpoint)
    for name in NAMES:
        assert targets[f"alias/{STACK}/{name}"] == keys[name][0]
    kms = client(endpoint)
    surplus = {
        k["KeyId"]: tags_of(kms, k["KeyId"])
        for k in kms.list_keys()["Keys"]
        if k["KeyId"] not in {ids[0] for ids in keys.values()}
    }
    kept = {ids[0] for ids in keys.values()}
    for key_id, tags in surplus.items():
        assert "kmsplan:stack" not in tags and "kmsplan:key" not in tags, key_id
        assert tags["kmsplan:duplicate-of"] in kept, key_id
    assert pending_deletion(endpoint) == []
    assert (again, "No changes" in again_out) == (0, True), again_out
