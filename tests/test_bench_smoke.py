"""Smoke test of the benchmark harness: the proxy in front of the test moto server counts,
throttles and pages like KMS, and one tiny plan scenario runs end to end. Counts only: the
benchmark's timings are reported in bench/RESULTS.md, never asserted."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.emulator import ACCOUNT, OTHER_ACCOUNT, Emulator, control
from bench.quotas import REAL_QUOTAS

pytestmark = pytest.mark.integration


@pytest.fixture
def emulator(endpoint: str) -> Iterator[Emulator]:
    """The bench proxy (no latency, KMS's quotas) in front of the test session's moto server."""
    port = urlparse(endpoint).port
    assert port is not None
    emu = Emulator(
        latency_ms=0, quotas=dict(REAL_QUOTAS), upstream_port=port, share_symmetric_key=False
    )
    try:
        yield emu
    finally:
        emu.stop()


def test_proxy_throttles_past_the_quota_like_kms(emulator: Emulator) -> None:
    # One token, refilled once per 100 s: the second CreateKey in a row is over the quota.
    control(emulator.endpoint, "configure", {"quotas": {"kms:CreateKey": 0.01}})
    kms = boto3.client(
        "kms",
        endpoint_url=emulator.endpoint,
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    kms.create_key(Description="first")
    with pytest.raises(ClientError) as caught:
        kms.create_key(Description="second")

    error = caught.value.response
    assert error["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    stats = control(emulator.endpoint, "stats")["ops"]
    assert stats["kms:CreateKey"] == {"calls": 2, "throttled": 1, "errors": 0}
    # The throttled call never reached moto: one key exists.
    assert len(kms.list_keys()["Keys"]) == 1


def test_proxy_names_operations_of_every_protocol(emulator: Emulator) -> None:
    sts = boto3.client("sts", endpoint_url=emulator.endpoint, region_name="us-east-1")
    tagging = boto3.client(
        "resourcegroupstaggingapi", endpoint_url=emulator.endpoint, region_name="us-east-1"
    )
    kms = boto3.client("kms", endpoint_url=emulator.endpoint, region_name="us-east-1")

    sts.get_caller_identity()
    tagging.get_resources(ResourceTypeFilters=["kms:key"])
    with pytest.raises(ClientError):
        kms.describe_key(KeyId="alias/bench/missing")

    stats = control(emulator.endpoint, "stats")["ops"]
    assert stats == {
        "kms:DescribeKey": {"calls": 1, "throttled": 0, "errors": 1},
        "sts:GetCallerIdentity": {"calls": 1, "throttled": 0, "errors": 0},
        "tagging:GetResources": {"calls": 1, "throttled": 0, "errors": 0},
    }


def test_proxy_pages_list_aliases_at_most_100_per_call(emulator: Emulator) -> None:
    control(
        emulator.endpoint, "populate", {"unmanaged_keys": 3, "aliases_per_key": 50, "roles": []}
    )
    kms = boto3.client("kms", endpoint_url=emulator.endpoint, region_name="us-east-1")
    control(emulator.endpoint, "reset-stats")

    names = [
        a["AliasName"]
        for page in kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 100})
        for a in page["Aliases"]
    ]

    assert len(names) == len(set(names))
    assert len([n for n in names if n.startswith("alias/other/")]) == 150
    calls = control(emulator.endpoint, "stats")["ops"]["kms:ListAliases"]["calls"]
    assert calls == math.ceil(len(names) / 100)


def test_tiny_plan_scenario_reads_each_key_a_bounded_number_of_times(
    emulator: Emulator, tmp_path: Path
) -> None:
    manifest = pytest.importorskip("kmsplan.manifest")
    if not hasattr(manifest, "load"):
        pytest.skip("kmsplan.manifest.load is not available")
    from bench.scenarios import Bench, plan_scenario

    bench = Bench(
        endpoint=emulator.endpoint,
        latency_s=0.0,
        proxy_quotas=dict(REAL_QUOTAS),
        parallelism=4,
        workdir=tmp_path,
    )

    [concurrent, sequential] = plan_scenario(bench, managed=3, unmanaged=20, sequential_too=True)

    for m in (concurrent, sequential):
        assert m.changes == 0, m.notes  # the seeded keys are exactly what the manifest declares
        assert m.throttled == 0
        assert m.errors == 0
        per_key = {op: n for op, n in m.calls.items() if n == 3}
        assert set(per_key) >= {"kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"}
        assert m.total_calls <= 5 * 3 + 3 + 10  # ≤ 5 per key + identity/discovery/aliases + IAM
        # The 20 unmanaged keys are never read one by one.
        assert m.calls.get("kms:ListResourceTags", 0) <= 3
    assert concurrent.calls == sequential.calls
    assert sequential.parallelism == 1


MAX_PAGES = 10


def test_pager_asks_moto_once_per_listing_and_rejects_unknown_markers() -> None:
    from bench.proxy import Pager

    upstream_calls: list[bytes] = []
    aliases = [{"AliasName": f"alias/a{i:03d}"} for i in range(250)]

    def moto(body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream_calls.append(body)
        return 200, [], json.dumps({"Aliases": aliases, "Truncated": False}).encode()

    pager = Pager()
    pages, marker = [], None
    # 250 aliases are 3 pages; a pager that never stops truncating fails here, not hangs.
    for _ in range(MAX_PAGES):
        request = {"Limit": 100, **({"Marker": marker} if marker else {})}
        status, _, data = pager.page("kms:ListAliases", json.dumps(request).encode(), moto)
        assert status == 200
        doc = json.loads(data)
        pages.append([a["AliasName"] for a in doc["Aliases"]])
        if not doc["Truncated"]:
            assert "NextMarker" not in doc
            break
        marker = doc["NextMarker"]
    else:
        pytest.fail(f"ListAliases still Truncated after {MAX_PAGES} pages of 100 (250 aliases)")

    assert [len(p) for p in pages] == [100, 100, 50]
    assert [name for page in pages for name in page] == [a["AliasName"] for a in aliases]
    assert upstream_calls == [b"{}"]  # Limit and Marker never reach moto
    status, _, data = pager.page("kms:ListAliases", b'{"Marker": "s999:100"}', moto)
    assert status == 400
    assert json.loads(data) == {"__type": "InvalidMarkerException", "message": "Invalid marker"}


def test_tiny_apply_scenario_creates_updates_and_replans_clean(
    emulator: Emulator, tmp_path: Path
) -> None:
    from bench.scenarios import Bench, apply_scenario

    bench = Bench(
        endpoint=emulator.endpoint,
        latency_s=0.0,
        proxy_quotas=dict(REAL_QUOTAS),
        parallelism=4,
        workdir=tmp_path,
    )

    create, update, replan = apply_scenario(bench, managed=2)

    assert [m.kind for m in (create, update, replan)] == ["apply-create", "apply-update", "replan"]
    for m in (create, update):
        assert m.changes > 0
        assert (m.failed, m.notes) == (0, [])
    assert create.calls.get("kms:CreateKey") == 2
    assert "kms:CreateKey" not in update.calls  # a tag changes in place
    assert (replan.changes, replan.notes) == (0, [])


def test_fast_path_scenario_loads_the_same_stack_every_way_and_reports_a_row(
    tmp_path: Path,
) -> None:
    from bench.report import fast_path_table
    from bench.scenarios import FAST_PATH_SETTINGS, Bench, fast_path_scenario
    from kmsplan.manifest import schema, source

    fast_document, surely_valid = source._fast_document, schema._surely_valid
    bench = Bench(endpoint="", latency_s=0.0, proxy_quotas={}, parallelism=1, workdir=tmp_path)

    [m] = fast_path_scenario(bench, managed=5, repeats=1)

    # Every setting was measured, and the fast paths are back in place afterwards.
    assert list(m.phases) == [name for name, _, _ in FAST_PATH_SETTINGS]
    assert all(seconds > 0 for seconds in m.phases.values())
    assert (source._fast_document, schema._surely_valid) == (fast_document, surely_valid)
    [header, _, row] = fast_path_table([m]).splitlines()
    assert header.startswith("| N keys | both fast paths s |")
    assert row.startswith("| 5 | ")


def test_proxy_keeps_quotas_and_counters_per_account_and_region(emulator: Emulator) -> None:
    # One token per bucket, refilled once per 100 s: a second CreateKey in the same account
    # and Region is throttled, one in another Region or another account is not.
    control(emulator.endpoint, "configure", {"quotas": {"kms:CreateKey": 0.01}})
    one_try = Config(retries={"mode": "standard", "total_max_attempts": 1})

    def kms(region: str, **credentials: str) -> Any:
        return boto3.client(
            "kms", endpoint_url=emulator.endpoint, region_name=region, config=one_try, **credentials
        )

    sts = boto3.client("sts", endpoint_url=emulator.endpoint, region_name="us-east-1")
    assumed = sts.assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/bench-kmsplan", RoleSessionName="smoke"
    )["Credentials"]
    other = kms(
        "us-east-1",
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
    )

    kms("us-east-1").create_key(Description="base account, us-east-1")
    with pytest.raises(ClientError) as caught:
        kms("us-east-1").create_key(Description="over the quota")
    kms("eu-west-1").create_key(Description="base account, eu-west-1")
    created = other.create_key(Description="other account, us-east-1")

    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert created["KeyMetadata"]["Arn"].split(":")[4] == OTHER_ACCOUNT  # moto agrees
    places = control(emulator.endpoint, "stats")["places"]
    assert places == {
        f"{ACCOUNT}/us-east-1": {
            "kms:CreateKey": {"calls": 2, "throttled": 1, "errors": 0},
            "sts:AssumeRole": {"calls": 1, "throttled": 0, "errors": 0},
        },
        f"{ACCOUNT}/eu-west-1": {"kms:CreateKey": {"calls": 1, "throttled": 0, "errors": 0}},
        f"{OTHER_ACCOUNT}/us-east-1": {"kms:CreateKey": {"calls": 1, "throttled": 0, "errors": 0}},
    }
    # The whole-proxy counters are unchanged: the sum over account-Regions.
    assert control(emulator.endpoint, "stats")["ops"]["kms:CreateKey"] == {
        "calls": 4,
        "throttled": 1,
        "errors": 0,
    }


def test_the_benchmarks_quotas_reach_the_limiters_its_stacks_share() -> None:
    from bench import kmsplan_api as km
    from kmsplan.aws.quotas import DEFAULT_QUOTAS
    from kmsplan.model import Placement
    from kmsplan.run.clients import Budget

    place = Placement(account_id=ACCOUNT, region="eu-west-1")
    scaled = km.aws_settings("http://127.0.0.1:1", parallelism=4, quotas={"ListGrants": 5.0})
    published = km.aws_settings("http://127.0.0.1:1", parallelism=4)

    limiter = Budget(scaled).limiter(place)
    assert limiter.rate("ListGrants") == 5.0
    assert limiter.rate("DescribeKey") == DEFAULT_QUOTAS["DescribeKey"]  # the others unchanged
    assert Budget(published).limiter(place).rate("ListGrants") == DEFAULT_QUOTAS["ListGrants"]


def test_tiny_stacks_scenario_plans_every_stack_in_its_account_and_region(
    emulator: Emulator, tmp_path: Path
) -> None:
    from bench.scenarios import Bench, stacks_scenario

    bench = Bench(
        endpoint=emulator.endpoint,
        latency_s=0.0,
        proxy_quotas=dict(REAL_QUOTAS),
        parallelism=4,
        workdir=tmp_path,
    )

    rows = stacks_scenario(bench, stacks=3, keys=2, read_scale=0.05)

    assert [m.kind for m in rows] == ["stacks", "stacks-sequential"]
    expected_places = {f"{ACCOUNT}/us-east-1", f"{OTHER_ACCOUNT}/us-east-1", f"{ACCOUNT}/eu-west-1"}
    for m in rows:
        assert (m.failed, m.changes, m.errors) == (0, 0, 0), m.notes
        by_place = {p["place"]: p for p in m.places}
        assert set(by_place) == expected_places
        assert all(p["stacks"] == 1 for p in by_place.values())
        # Each stack's 2 keys are read in its own account-Region: ≥ 5 reads per key there.
        assert all(p["calls"] >= 10 for p in by_place.values())
        # Each account-Region's bounding API: its stack's one discovery page at 0.05 × 15/s
        # (1.33 s) outweighs its 2 ListGrants at 0.05 × 100/s (0.4 s).
        assert all((p["op"], p["needed"]) == ("tagging:GetResources", 1) for p in by_place.values())
        assert all(p["op_span"][0] <= p["op_span"][1] for p in by_place.values())
        assert sum(p["throttled"] for p in by_place.values()) == m.throttled
        assert m.calls["kms:ListGrants"] == 6
        assert m.calls["sts:AssumeRole"] == 1  # the one stack in the other account
        assert m.bounds is not None and m.bounds.quota_s == max(p["bound_s"] for p in m.places)
    assert rows[0].calls == rows[1].calls
    assert [m.notes[0] for m in rows] == [
        "called as plan_each(stacks)",
        "called as plan_each(stacks, max_stacks=1)",
    ]
    assert bench.proxy_quotas == REAL_QUOTAS  # the scaled quotas were for the scenario only
