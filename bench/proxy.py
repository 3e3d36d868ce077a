"""A small HTTP proxy in front of the moto server that behaves like KMS's front door.

For every request it
- names the operation: `X-Amz-Target` (JSON protocol: `TrentService.DescribeKey` is
  `kms:DescribeKey`, `ResourceGroupsTaggingAPI_20170126.GetResources` is
  `tagging:GetResources`) or the `Action=` of a query-protocol body (STS, IAM), with the
  service taken from the SigV4 credential scope;
- waits the configured latency (one network round trip, 20 ms by default);
- takes a token from that operation's bucket of the request's account and Region (KMS's
  quotas are per account and Region); an empty bucket answers HTTP 400
  `{"__type": "ThrottlingException", "message": "Rate exceeded"}` as KMS does, without
  reaching moto. The Region is the SigV4 credential scope's; the account is the one whose
  credentials signed the request: the proxy learns the accounts of assumed-role credentials
  from the STS AssumeRole answers that pass through it (moto lands calls made with them in
  the role's account), and any other access key is the base account (moto's default);
- counts calls, throttled calls and errors per operation, in all and per account-Region;
- pages KMS list responses as KMS does (moto 5.2.1 ignores `Limit` and returns everything in
  one page, which would make listing look free): `Limit` is honoured up to the API's maximum
  (ListAliases and ListGrants 100, ListKeys 1000, ListResourceTags 50) with KMS's defaults
  when absent, and `Marker`/`NextMarker`/`Truncated` work as documented; RGTA GetResources
  pages by `ResourcesPerPage` alone, as AWS does.

Paths under `/__bench/` are the harness's control API (stats, reset, populate), handled by
`control` callbacks rather than forwarded.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

THROTTLED_BODY = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})

TARGET_SERVICES = {
    "TrentService": "kms",
    "ResourceGroupsTaggingAPI_20170126": "tagging",
}
# Credential=<access key id>/<date>/<Region>/<service>/aws4_request
_SCOPE = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")
BASE_ACCOUNT = "123456789012"  # moto's default account: the base credentials' account
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


def operation_name(headers: Any, body: bytes) -> str:
    """'<service>:<Operation>' for a request, e.g. 'kms:DescribeKey', 'sts:GetCallerIdentity'."""
    target = headers.get("X-Amz-Target")
    if target:
        prefix, _, op = target.partition(".")
        return f"{TARGET_SERVICES.get(prefix, prefix)}:{op}"
    scope = _SCOPE.search(headers.get("Authorization", ""))
    service = scope.group(3) if scope else "unknown"
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
    return f"{service}:{action}"


def signing_scope(headers: Any) -> tuple[str, str]:
    """(access key id, Region) of a SigV4-signed request; ("", "") when it is not signed."""
    scope = _SCOPE.search(headers.get("Authorization", ""))
    return (scope.group(1), scope.group(2)) if scope else ("", "")


def assumed_credentials(body: bytes) -> tuple[str, str] | None:
    """(access key id, account) of the credentials an STS AssumeRole answer hands out: its
    Credentials/AccessKeyId and the account of its AssumedRoleUser/Arn
    (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION); None if the answer has neither."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    key = root.findtext(".//{*}Credentials/{*}AccessKeyId")
    arn = root.findtext(".//{*}AssumedRoleUser/{*}Arn")
    parts = (arn or "").split(":")
    if not key or len(parts) < 5 or not parts[4]:
        return None
    return key.strip(), parts[4]


class TokenBucket:
    """`rate` tokens per second, holding at most `burst` (one second's worth by default)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else rate)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


@dataclass(slots=True)
class OpStats:
    calls: int = 0  # every request received, throttled ones included
    throttled: int = 0
    errors: int = 0  # answered by moto with HTTP >= 400
    first: float = 0.0
    last: float = 0.0


@dataclass(slots=True)
class ProxyStats:
    ops: dict[str, OpStats] = field(default_factory=dict)
    # "<account>/<Region>" -> operation -> counters: the same calls, per account-Region
    places: dict[str, dict[str, OpStats]] = field(default_factory=dict)
    inflight: int = 0
    max_inflight: int = 0
    since: float = field(default_factory=time.monotonic)  # when the counters were last reset
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, op: str, place: str = "") -> None:
        now = time.monotonic()
        with self.lock:
            s = self.ops.setdefault(op, OpStats(first=now))
            s.calls += 1
            s.last = now
            p = self.places.setdefault(place, {}).setdefault(op, OpStats(first=now))
            p.calls += 1
            p.last = now
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)

    def end(self, op: str, place: str = "", *, throttled: bool, error: bool) -> None:
        with self.lock:
            for s in (self.ops.get(op), self.places.get(place, {}).get(op)):
                if s is None:  # the counters were reset while the request was in flight
                    continue
                s.throttled += int(throttled)
                s.errors += int(error)
            self.inflight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "ops": {
                    op: {"calls": s.calls, "throttled": s.throttled, "errors": s.errors}
                    for op, s in sorted(self.ops.items())
                },
                # When each operation was first and last called, in seconds since the reset:
                # the timeline of a run (which phase waited for which).
                "timeline": {
                    op: [round(s.first - self.since, 3), round(s.last - self.since, 3)]
                    for op, s in sorted(self.ops.items())
                },
                "max_inflight": self.max_inflight,
                "places": {
                    place: {
                        op: {"calls": s.calls, "throttled": s.throttled, "errors": s.errors}
                        for op, s in sorted(ops.items())
                    }
                    for place, ops in sorted(self.places.items())
                },
                # The same timeline per account-Region: when each one's calls began and ended.
                "place_timeline": {
                    place: {
                        op: [round(s.first - self.since, 3), round(s.last - self.since, 3)]
                        for op, s in sorted(ops.items())
                    }
                    for place, ops in sorted(self.places.items())
                },
            }

    def reset(self) -> None:
        with self.lock:
            self.ops.clear()
            self.places.clear()
            self.max_inflight = self.inflight
            self.since = time.monotonic()


@dataclass(slots=True)
class ProxyConfig:
    upstream_host: str
    upstream_port: int
    latency_s: float = 0.020
    # "<service>:<Op>" -> req/s, enforced per account and Region (each has buckets of its own)
    quotas: dict[str, float] = field(default_factory=dict)
    base_account: str = BASE_ACCOUNT  # the account of access keys no AssumeRole handed out


# operation -> (list member, default Limit, maximum Limit), from the KMS API reference.
KMS_PAGES: dict[str, tuple[str, int, int]] = {
    "kms:ListAliases": ("Aliases", 50, 100),
    "kms:ListKeys": ("Keys", 100, 1000),
    "kms:ListGrants": ("Grants", 50, 100),
    "kms:ListResourceTags": ("Tags", 50, 50),
}


def rgta_request(body: bytes) -> bytes:
    """AWS pages GetResources by ResourcesPerPage when it is given; moto also applies its
    default TagsPerPage of 100 (20 keys per page at 5 tags each). Asking for the largest
    TagsPerPage that AWS and moto accept (500) leaves ResourcesPerPage in charge for keys
    with up to 5 tags, as the benchmark's keys have."""
    params = json.loads(body or b"{}")
    if "ResourcesPerPage" in params and "TagsPerPage" not in params:
        params["TagsPerPage"] = 500
        return json.dumps(params).encode()
    return body


class Pager:
    """KMS paging over moto's one-page answers.

    The first page of a listing asks moto for everything and keeps the items; the following
    pages (their Marker names the snapshot) are served from it without asking moto again, as
    cheap as a real KMS page instead of a full listing each time.
    """

    KEEP = 64  # listings kept at once; older ones answer InvalidMarkerException

    def __init__(self) -> None:
        self._snapshots: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._next_id = 0

    def page(
        self,
        op: str,
        body: bytes,
        forward: Callable[[bytes], tuple[int, list[tuple[str, str]], bytes]],
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        member, default, maximum = KMS_PAGES[op]
        params = json.loads(body or b"{}")
        limit = max(1, min(int(params.pop("Limit", default)), maximum))
        marker = params.pop("Marker", None)
        json_headers = [("Content-Type", "application/x-amz-json-1.1")]
        if marker:
            snapshot_id, _, offset_text = str(marker).partition(":")
            with self._lock:
                items = self._snapshots.get(snapshot_id)
            if items is None or not offset_text.isdigit():
                error = {"__type": "InvalidMarkerException", "message": "Invalid marker"}
                return 400, json_headers, json.dumps(error).encode()
            offset, doc, status, headers = int(offset_text), {}, 200, json_headers
        else:
            status, headers, data = forward(json.dumps(params).encode())
            if status >= 400:
                return status, headers, data
            doc = json.loads(data)
            items, offset = list(doc.get(member) or []), 0
            snapshot_id = ""
        doc[member] = items[offset : offset + limit]
        truncated = offset + limit < len(items)
        doc["Truncated"] = truncated
        doc.pop("NextMarker", None)
        if truncated:
            if not snapshot_id:
                snapshot_id = self._keep(items)
            doc["NextMarker"] = f"{snapshot_id}:{offset + limit}"
        return status, headers, json.dumps(doc).encode()

    def _keep(self, items: list[Any]) -> str:
        with self._lock:
            self._next_id += 1
            snapshot_id = f"s{self._next_id}"
            self._snapshots[snapshot_id] = items
            while len(self._snapshots) > self.KEEP:
                del self._snapshots[next(iter(self._snapshots))]
            return snapshot_id


ControlHandler = Callable[[dict[str, Any]], dict[str, Any]]


class KmsProxy:
    """The proxy server; `start()` binds 127.0.0.1 and serves from a daemon thread."""

    def __init__(self, config: ProxyConfig, *, port: int = 0) -> None:
        self.config = config
        self.stats = ProxyStats()
        self.control: dict[str, ControlHandler] = {
            "stats": lambda _: self.stats.snapshot(),
            "reset-stats": self._reset_stats,
            "configure": self._configure,
        }
        self.pager = Pager()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}  # (place, op) -> bucket
        self._buckets_lock = threading.Lock()
        self._accounts: dict[str, str] = {}  # access key id -> account (from AssumeRole)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ---- control API ----

    def _reset_stats(self, _: dict[str, Any]) -> dict[str, Any]:
        self.stats.reset()
        with self._buckets_lock:
            self._buckets.clear()  # every scenario starts with full buckets
        return {"ok": True}

    def _configure(self, body: dict[str, Any]) -> dict[str, Any]:
        if "latency_ms" in body:
            self.config.latency_s = float(body["latency_ms"]) / 1000
        if "quotas" in body:
            self.config.quotas = {str(k): float(v) for k, v in body["quotas"].items()}
        with self._buckets_lock:
            self._buckets.clear()
        return {"latency_ms": self.config.latency_s * 1000, "quotas": self.config.quotas}

    def forget_accounts(self) -> None:
        """Forget the assumed-role access keys learnt so far (the account was reset)."""
        with self._buckets_lock:
            self._accounts.clear()

    # ---- the data path ----

    def place(self, headers: Any) -> str:
        """The request's account and Region, as "<account>/<Region>": where KMS counts it
        against the quotas."""
        access_key, region = signing_scope(headers)
        with self._buckets_lock:
            account = self._accounts.get(access_key, self.config.base_account)
        return f"{account}/{region or '-'}"

    def learn(self, body: bytes) -> None:
        """Note the account of the credentials an AssumeRole answer hands out."""
        found = assumed_credentials(body)
        if found is not None:
            with self._buckets_lock:
                self._accounts[found[0]] = found[1]

    def _admit(self, op: str, place: str = "") -> bool:
        rate = self.config.quotas.get(op)
        if not rate:
            return True
        with self._buckets_lock:
            bucket = self._buckets.get((place, op))
            if bucket is None:
                bucket = self._buckets[(place, op)] = TokenBucket(rate)
        return bucket.take()

    def _forward(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(
            self.config.upstream_host, self.config.upstream_port, timeout=60
        )
        try:
            out_headers = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            out_headers["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=out_headers)
            resp = conn.getresponse()
            data = resp.read()
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            return resp.status, kept, data
        finally:
            conn.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: boto3 reuses its connections
            # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's
            # algorithm and the client's delayed ACK add ~40 ms to every response.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a request log would cost more than the requests

            def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/__bench/"):
                    name = self.path[len("/__bench/") :].split("?")[0]
                    handler = proxy.control.get(name)
                    if handler is None:
                        self._reply(404, [], b"unknown control path")
                        return
                    try:
                        result = handler(json.loads(body) if body else {})
                    except Exception as exc:  # the harness shows this to whoever runs it
                        self._reply(500, [], f"{type(exc).__name__}: {exc}".encode())
                        return
                    self._reply(
                        200, [("Content-Type", "application/json")], json.dumps(result).encode()
                    )
                    return
                op = operation_name(self.headers, body)
                place = proxy.place(self.headers)
                proxy.stats.begin(op, place)
                throttled = error = False
                try:
                    if proxy.config.latency_s:
                        time.sleep(proxy.config.latency_s)
                    if not proxy._admit(op, place):
                        throttled = True
                        self._reply(
                            400,
                            [
                                ("Content-Type", "application/x-amz-json-1.1"),
                                ("x-amzn-ErrorType", "ThrottlingException"),
                            ],
                            THROTTLED_BODY.encode(),
                        )
                        return

                    def forward(
                        upstream_body: bytes,
                    ) -> tuple[int, list[tuple[str, str]], bytes]:
                        return proxy._forward(self.command, self.path, self.headers, upstream_body)

                    if op in KMS_PAGES:
                        status, headers, data = proxy.pager.page(op, body, forward)
                    elif op == "tagging:GetResources":
                        status, headers, data = forward(rgta_request(body))
                    else:
                        status, headers, data = forward(body)
                    if op == "sts:AssumeRole" and status == 200:
                        proxy.learn(data)
                    error = status >= 400
                    self._reply(status, headers, data)
                finally:
                    proxy.stats.end(op, place, throttled=throttled, error=error)

            def do_POST(self) -> None:
                self._handle()

            def do_GET(self) -> None:
                self._handle()

        return Handler
