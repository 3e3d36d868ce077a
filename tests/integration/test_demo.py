"""`kmsplan demo` end to end in its own process (it starts and stops its own emulator), and
`kmsplan local-kms` / `local_kms()`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from kmsplan.cli import main
from kmsplan.commands import local_kms as local_kms_command
from kmsplan.errors import KmsplanError
from kmsplan.local_kms import MISSING_EXTRA, local_kms
from kmsplan.manifest import load

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_the_whole_workflow_and_stops_its_emulator(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    done = subprocess.run(
        [sys.executable, "-m", "kmsplan.cli", "demo", str(REPO / "examples")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for heading in (
        "== 1. Validate ==",
        "== 2. Plan ==",
        "== 3. Apply ==",
        "== 4. Plan again ==",
        "== 5. The safety gate ==",
        "== 6. Envelope encryption ==",
        "== 7. Release and adopt a key ==",
    ):
        assert heading in lines
    after_apply = lines[
        lines.index("== 4. Plan again ==") : lines.index("== 5. The safety gate ==")
    ]
    applying = lines[lines.index("== 3. Apply ==") : lines.index("== 4. Plan again ==")]
    applied = [line for line in applying if line.startswith("Apply complete: ")]
    assert applied and len(applied) == after_apply.count("No changes. KMS matches the manifests.")
    assert (
        "error: refusing to apply: 1 change(s) blocked by the safety gate; nothing was changed:"
        in lines
    )
    assert any("blocked by deletion-protection" in line for line in lines)
    assert any(line.startswith("1. GenerateDataKey(KeyId=alias/") for line in lines)
    assert any(line.startswith("Round trip OK: the decrypted document matches") for line in lines)
    adoption = lines[lines.index("== 7. Release and adopt a key ==") :]
    assert any("« key.reports will be released" in line for line in adoption)
    assert any("» key.demo-reports will be adopted" in line for line in adoption)
    assert adoption.count("No changes. KMS matches the manifests.") == 1
    assert sum(line.startswith("Apply complete: ") for line in adoption) == 3
    assert lines[-1] == "Stopping the local KMS emulator."
    assert "Traceback" not in done.stderr


def test_local_kms_serves_kms_on_loopback_until_the_block_ends() -> None:
    with local_kms() as endpoint:
        assert endpoint.startswith("http://127.0.0.1:")
        kms = boto3.client(
            "kms",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=boto3.session.Config(retries={"total_max_attempts": 1}),
        )
        assert kms.create_key()["KeyMetadata"]["KeyState"] == "Enabled"
    with pytest.raises(EndpointConnectionError):
        kms.list_keys()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_local_kms_command_prints_how_to_use_it_and_stops_on_ctrl_c(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()

    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(local_kms_command, "wait_for_interrupt", interrupt)
    assert main(["local-kms", "--port", str(port)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Local KMS emulator listening on http://127.0.0.1:{port}"
    hint = f"  kmsplan plan --endpoint-url http://127.0.0.1:{port} --region us-east-1 "
    suggested = [line.removeprefix(hint) for line in out if line.startswith(hint)]
    assert suggested == ["examples/minimal.yaml"]
    # The suggested command must work as printed: its path is one stack that loads.
    assert load([str(Path(__file__).resolve().parents[2] / suggested[0])]).name == "minimal"
    assert out[-1] == "Stopped."
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the port was released


def test_local_kms_command_on_a_busy_port_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["local-kms", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot start the local KMS emulator on 127.0.0.1:{port}: ")
    assert err.endswith("pick another --port\n")


def test_without_the_local_extra_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "moto.server", None)
    with pytest.raises(KmsplanError) as missing, local_kms():
        pass
    assert str(missing.value) == MISSING_EXTRA
    assert MISSING_EXTRA.endswith("pip install 'kmsplan[local]'")
