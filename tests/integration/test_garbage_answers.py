"""Every command that talks to AWS, against an endpoint that answers garbage (a proxy's login
page, an empty body, truncated JSON, XML with the wrong content type): one clear line, exit
1, never a traceback and never a plan built on an answer that was not AWS's."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REGION, make_kms_client

from kmsplan.cli import main

pytestmark = pytest.mark.integration

MANIFEST = """\
version: 1
stack: payments
keys:
  orders:
    description: Orders
    aliases: [alias/payments/orders]
"""

STS_ANSWER = b"""<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/moto</Arn>
<UserId>AKIAIOSFODNN7EXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>
<ResponseMetadata><RequestId>c6104cbe</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"""

# (body, content type) answered with HTTP 200.
GARBAGE = {
    "html-login-page": (
        b"<!DOCTYPE html><html><body><form>Sign in</form></body></html>",
        "text/html; charset=utf-8",
    ),
    "empty-body": (b"", "application/x-amz-json-1.1"),
    # JSON, but without the list every AWS answer carries (it would read as "no keys").
    "empty-json-object": (b"{}", "application/x-amz-json-1.1"),
    "truncated-json": (b'{"Keys": [{"KeyId": "1234', "application/x-amz-json-1.1"),
    # XML where JSON is due (and, to STS, an XML answer to another question).
    "wrong-content-type": (b'<?xml version="1.0"?><ListKeysResponse/>', "text/xml"),
}


class _Garbage(http.server.BaseHTTPRequestHandler):
    server: _GarbageServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = self.rfile.read(length)
        if self.server.sts_answers and b"Action=GetCallerIdentity" in request:
            body, content_type = STS_ANSWER, "text/xml"
        else:
            body, content_type = self.server.answer
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _GarbageServer(http.server.ThreadingHTTPServer):
    answer: tuple[bytes, str]
    sts_answers: bool


@pytest.fixture(params=list(GARBAGE), ids=list(GARBAGE))
def garbage(request: pytest.FixtureRequest) -> Iterator[tuple[str, _GarbageServer]]:
    server = _GarbageServer(("127.0.0.1", 0), _Garbage)
    server.answer = GARBAGE[request.param]
    server.sts_answers = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "payments.yaml"
    path.write_text(MANIFEST, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--region", REGION])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_clear_line(code: int, out: str, err: str, endpoint: str) -> None:
    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("error: "), err
    assert f"the endpoint {endpoint} did not answer like AWS (" in last, err
    assert last.endswith("; check --endpoint-url, AWS_ENDPOINT_URL* and any proxy in between")
    # Every line is kmsplan's own: warnings (tag discovery fell back to a scan) and the error.
    assert all(
        line.startswith(("error: ", "tag discovery unavailable")) for line in err.splitlines()
    ), err


COMMANDS = {
    "plan": ["plan", "{manifest}"],
    "apply": ["apply", "{manifest}", "--auto-approve"],
    "lint --live": ["lint", "--live", "{manifest}"],
}


@pytest.mark.parametrize("sts_answers", [False, True], ids=["all-garbage", "kms-garbage"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_commands_end_in_one_clear_line_on_garbage_answers(
    garbage: tuple[str, _GarbageServer],
    manifest: Path,
    command: str,
    sts_answers: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoint, server = garbage
    server.sts_answers = sts_answers
    if command == "lint --live" and not sts_answers:
        # lint --live asks STS only for a manifest that pins an account.
        manifest.write_text(
            MANIFEST.replace("keys:", 'account: "123456789012"\nkeys:'), encoding="utf-8"
        )
    args = [part.format(manifest=manifest) for part in COMMANDS[command]]
    code, out, err = run(capsys, *args, "--endpoint-url", endpoint)
    assert_one_clear_line(code, out, err, endpoint)


@pytest.mark.parametrize("sts_answers", [False, True], ids=["all-garbage", "kms-garbage"])
def test_apply_of_a_saved_plan_ends_in_one_clear_line_on_garbage_answers(
    garbage: tuple[str, _GarbageServer],
    endpoint: str,
    manifest: Path,
    tmp_path: Path,
    sts_answers: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    saved = tmp_path / "plan.json"
    code, _, err = run(
        capsys, "plan", str(manifest), "--out", str(saved), "--endpoint-url", endpoint
    )
    assert code == 0, err
    kms = make_kms_client(endpoint)
    before = kms.list_keys()["Keys"]
    garbage_endpoint, server = garbage
    server.sts_answers = sts_answers
    code, out, err = run(
        capsys, "apply", "--plan", str(saved), "--auto-approve", "--endpoint-url", garbage_endpoint
    )
    assert_one_clear_line(code, out, err, garbage_endpoint)
    assert kms.list_keys()["Keys"] == before == []


def test_an_endpoint_url_with_a_bogus_path_is_one_clear_line(
    endpoint: str, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "plan", str(manifest), "--endpoint-url", f"{endpoint}/no/such/path"
    )
    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: GetCallerIdentity: ")
    assert make_kms_client(endpoint).list_keys()["Keys"] == []
