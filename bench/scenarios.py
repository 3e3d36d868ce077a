"""The scenarios: each one drives kmsplan against the emulated account and returns a
Measurement (wall time, calls by operation, throttling, and the bounds it is compared to)."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import kmsplan_api as km
from bench.emulator import ACCOUNT, OTHER_ACCOUNT, REGION, control
from bench.manifests import STACK, role_names, write_manifest
from bench.quotas import REAL_QUOTAS, quota_bound_seconds, scaled


@dataclass(slots=True, kw_only=True)
class Bench:
    """What every scenario needs: where the emulator is and how it is configured."""

    endpoint: str
    latency_s: float
    proxy_quotas: dict[str, float]  # "<service>:<Op>" -> req/s, enforced by the proxy
    parallelism: int
    workdir: Path
    emulator_rate: float = 0.0  # calls/s the emulator sustains with no latency/quotas
    last_throttled: dict[str, int] = field(default_factory=dict)  # per op, from the last stats
    last_timeline: dict[str, tuple[float, float]] = field(default_factory=dict)
    last_max_inflight: int = 0

    def client_quotas(self) -> dict[str, float] | None:
        """kmsplan's limiter gets the quotas the proxy enforces (its defaults when unscaled)."""
        if self.proxy_quotas == REAL_QUOTAS:
            return None
        return {name.split(":", 1)[1]: rate for name, rate in self.proxy_quotas.items()}

    def aws(self, *, parallelism: int | None = None) -> Any:
        return km.clients(
            self.endpoint,
            parallelism=parallelism or self.parallelism,
            quotas=self.client_quotas(),
        )


@dataclass(slots=True, kw_only=True)
class Bounds:
    quota_s: float  # max over APIs of calls / (proxy) quota
    quota_op: str
    chain: int  # longest chain of dependent round trips
    latency_s: float  # chain x latency
    emulator_s: float  # calls / what the emulator sustains
    real_quota_s: float  # calls / KMS's published quotas: the real-AWS floor (with latency_s)
    real_quota_op: str

    @property
    def lower_s(self) -> float:
        return max(self.quota_s, self.latency_s)

    @property
    def lower_with_emulator_s(self) -> float:
        return max(self.lower_s, self.emulator_s)

    @property
    def limited_by(self) -> str:
        options = {
            f"quota ({self.quota_op})": self.quota_s,
            f"latency ({self.chain} round trips)": self.latency_s,
            "emulator throughput": self.emulator_s,
        }
        return max(options, key=lambda k: options[k])


@dataclass(slots=True, kw_only=True)
class Measurement:
    name: str
    kind: str
    managed: int = 0
    unmanaged: int = 0
    parallelism: int = 0
    wall_s: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    errors: int = 0
    failed: int = 0  # apply: changes that failed
    changes: int | None = None
    bounds: Bounds | None = None
    phases: dict[str, float] = field(default_factory=dict)  # cpu scenario: seconds per phase
    timeline: dict[str, tuple[float, float]] = field(default_factory=dict)  # op -> first, last
    max_inflight: int = 0
    # several stacks: each account-Region's stacks, needed calls and quota bound, slowest first
    places: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "bounds"}
        out["total_calls"] = self.total_calls
        if self.bounds is not None:
            b = self.bounds
            out["bounds"] = {k: getattr(b, k) for k in b.__dataclass_fields__}
            out["bounds"]["lower_s"] = b.lower_s
            out["bounds"]["limited_by"] = b.limited_by
        return out


# ---------------------------------------------------------------------------------------------
# Helpers


def _stats(bench: Bench) -> tuple[dict[str, int], int, int]:
    snap = control(bench.endpoint, "stats")
    ops = snap["ops"]
    calls = {op: int(s["calls"]) for op, s in ops.items()}
    bench.last_throttled = {op: int(s["throttled"]) for op, s in ops.items() if s["throttled"]}
    bench.last_timeline = {op: tuple(v) for op, v in snap["timeline"].items()}
    bench.last_max_inflight = int(snap["max_inflight"])
    throttled = sum(int(s["throttled"]) for s in ops.values())
    errors = sum(int(s["errors"]) for s in ops.values())
    return calls, throttled, errors


def _bounds(bench: Bench, calls: dict[str, int], chain: int) -> Bounds:
    """Bounds for the calls the work needs: throttled attempts (retried) are not counted."""
    needed = {op: n - bench.last_throttled.get(op, 0) for op, n in calls.items()}
    quota_s, quota_op = quota_bound_seconds(needed, bench.proxy_quotas)
    real_s, real_op = quota_bound_seconds(needed, REAL_QUOTAS)
    total = sum(needed.values())
    return Bounds(
        quota_s=quota_s,
        quota_op=quota_op,
        chain=chain,
        latency_s=chain * bench.latency_s,
        emulator_s=total / bench.emulator_rate if bench.emulator_rate else 0.0,
        real_quota_s=real_s,
        real_quota_op=real_op,
    )


def _plan_chain(calls: dict[str, int]) -> int:
    """Pages of one listing follow each other (each needs the previous page's token); every
    per-key read can go out at once after discovery: pages of the longest listing + 1."""
    pages = max(
        calls.get("tagging:GetResources", 0),
        calls.get("kms:ListAliases", 0),
        calls.get("kms:ListKeys", 0),
        1,
    )
    return pages + 1


def fresh_account(bench: Bench, *, unmanaged: int) -> None:
    control(bench.endpoint, "reset")
    control(bench.endpoint, "populate", {"unmanaged_keys": unmanaged, "roles": role_names()})


def seed_managed(bench: Bench, stack: Any) -> int:
    """Put the stack's keys into the account as an apply would leave them (see emulator)."""
    from kmsplan.model import LiveState

    create_plan = km.diff(stack, LiveState(stack=STACK, account_id=ACCOUNT, region=REGION))
    calls = [
        [change.address, call.operation, dict(call.params)]
        for change in create_plan.changes
        for call in change.calls
    ]
    result = control(bench.endpoint, "seed", {"calls": calls})
    return int(result["keys"])


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Plan


def plan_scenario(
    bench: Bench, *, managed: int, unmanaged: int, sequential_too: bool
) -> list[Measurement]:
    """Plan N managed keys (already converged) in an account with U unmanaged keys."""
    fresh_account(bench, unmanaged=unmanaged)
    folder = write_manifest(bench.workdir / f"plan-{managed}", managed)
    stack = km.load(folder)
    seeded = seed_managed(bench, stack)
    runs = [("plan", bench.parallelism)]
    if sequential_too:
        runs.append(("plan-sequential", 1))
    out = []
    for kind, parallelism in runs:
        control(bench.endpoint, "reset-stats")
        aws = bench.aws(parallelism=parallelism)
        plan, wall = _timed(functools.partial(km.plan, aws, stack))
        calls, throttled, errors = _stats(bench)
        label = "plan" if kind == "plan" else "plan, sequential reader (parallelism 1)"
        m = Measurement(
            name=f"{label}: N={managed} U={unmanaged}",
            kind=kind,
            managed=managed,
            unmanaged=unmanaged,
            parallelism=parallelism,
            wall_s=wall,
            calls=calls,
            throttled=throttled,
            errors=errors,
            changes=len(plan.changes),
            bounds=_bounds(bench, calls, _plan_chain(calls)),
            timeline=bench.last_timeline,
            max_inflight=bench.last_max_inflight,
        )
        if seeded != managed:
            m.notes.append(f"seeded {seeded} keys, expected {managed}")
        out.append(m)
    return out


def quota_bound_plan_scenario(
    bench: Bench, *, managed: int, read_scale: float
) -> list[Measurement]:
    """The plan with KMS's read quotas scaled down (proxy and kmsplan's limiter alike), so that
    the quotas, not the emulator, set the pace: does kmsplan read at the quota?"""
    saved = bench.proxy_quotas
    bench.proxy_quotas = scaled(REAL_QUOTAS, read_scale=read_scale, write_scale=1.0)
    control(bench.endpoint, "configure", {"quotas": bench.proxy_quotas})
    try:
        [m] = plan_scenario(bench, managed=managed, unmanaged=0, sequential_too=False)
    finally:
        bench.proxy_quotas = saved
        control(bench.endpoint, "configure", {"quotas": saved})
    m.name = f"plan, read quotas × {read_scale:g}: N={managed} U=0"
    m.kind = "plan-quota"
    return [m]


# ---------------------------------------------------------------------------------------------
# Several stacks over accounts and Regions

STACK_ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/bench-kmsplan"
# The account-Regions the stacks are spread over, round-robin (2 accounts × 3 Regions).
PLACES: tuple[tuple[str, str], ...] = tuple(
    (account, region)
    for region in ("us-east-1", "eu-west-1", "ap-southeast-2")
    for account in (ACCOUNT, OTHER_ACCOUNT)
)


@dataclass(slots=True, kw_only=True)
class PlaceBound:
    """The quota bound of one account-Region: KMS counts every caller of the account there
    against the same per-API quotas."""

    place: str  # "<account>/<Region>"
    stacks: int
    calls: int  # needed calls (throttled attempts not counted)
    seconds: float  # max over APIs of calls / quota
    op: str
    op_calls: int = 0  # the needed calls of that API


def place_bounds(
    places: dict[str, dict[str, dict[str, int]]],
    quotas: dict[str, float],
    stacks: dict[str, int] | None = None,
) -> list[PlaceBound]:
    """Each account-Region's quota bound from the proxy's per-place counters, slowest first."""
    out = []
    for place, ops in places.items():
        needed = {op: int(c["calls"]) - int(c["throttled"]) for op, c in ops.items()}
        seconds, op = quota_bound_seconds(needed, quotas)
        out.append(
            PlaceBound(
                place=place,
                stacks=(stacks or {}).get(place, 0),
                calls=sum(needed.values()),
                seconds=seconds,
                op=op,
                op_calls=needed.get(op, 0),
            )
        )
    return sorted(out, key=lambda b: (-b.seconds, b.place))


def stacks_scenario(
    bench: Bench, *, stacks: int, keys: int, read_scale: float
) -> list[Measurement]:
    """`kmsplan plan` of `stacks` converged stacks of `keys` keys each, spread round-robin over
    2 accounts × 3 Regions (the second account's stacks name a `role:` there), through
    kmsplan's run layer (`plan_each`): all stacks as plan_each plans them, then the same
    stacks one after another. Read quotas are scaled by `read_scale` (proxy and kmsplan's
    limiter alike) so that the quotas, not the emulator, set the pace; each row is timed
    against the slowest account-Region's quota bound."""
    saved = bench.proxy_quotas
    bench.proxy_quotas = scaled(REAL_QUOTAS, read_scale=read_scale, write_scale=1.0)
    control(bench.endpoint, "configure", {"quotas": bench.proxy_quotas})
    try:
        return _stacks_rows(bench, stacks=stacks, keys=keys, read_scale=read_scale)
    finally:
        bench.proxy_quotas = saved
        control(bench.endpoint, "configure", {"quotas": saved})


def _stacks_rows(bench: Bench, *, stacks: int, keys: int, read_scale: float) -> list[Measurement]:
    from kmsplan.model import LiveState

    control(bench.endpoint, "reset")
    control(
        bench.endpoint,
        "populate",
        {
            "unmanaged_keys": 0,
            "roles": role_names(),
            "accounts": sorted({a for a, _ in PLACES}),
            "regions": sorted({r for _, r in PLACES}),
        },
    )
    loaded = []
    stacks_at: dict[str, int] = {}
    seeded = 0
    for i in range(stacks):
        account, region = PLACES[i % len(PLACES)]
        name = f"bench-{i:02d}"
        role = STACK_ROLE if account == OTHER_ACCOUNT else None
        folder = write_manifest(
            bench.workdir / f"stacks-{name}",
            keys,
            stack=name,
            account=account,
            region=region,
            role=role,
        )
        stack = km.load(folder)
        loaded.append(stack)
        stacks_at[f"{account}/{region}"] = stacks_at.get(f"{account}/{region}", 0) + 1
        create = km.diff(stack, LiveState(stack=name, account_id=account, region=region))
        calls = [
            [change.address, call.operation, dict(call.params)]
            for change in create.changes
            for call in change.calls
        ]
        body = {"calls": calls, "account": account, "region": region}
        seeded += int(control(bench.endpoint, "seed", body)["keys"])

    settings = km.aws_settings(
        bench.endpoint, parallelism=bench.parallelism, quotas=bench.client_quotas()
    )
    size = f"{stacks} stacks × {keys} keys, {len(stacks_at)} account-Regions"
    out = []
    for kind, label, one_at_a_time in (
        ("stacks", "plan of all stacks (plan_each)", False),
        ("stacks-sequential", "plan, stacks one after another", True),
    ):
        control(bench.endpoint, "reset-stats")
        (outcomes, how), wall = _timed(
            functools.partial(km.plan_each, loaded, settings, one_at_a_time=one_at_a_time)
        )
        calls_by_op, throttled, errors = _stats(bench)
        snap = control(bench.endpoint, "stats")
        bounds = place_bounds(snap["places"], bench.proxy_quotas, stacks_at)
        slowest = bounds[0]
        real = place_bounds(snap["places"], REAL_QUOTAS)[0]
        # The latency chain of one stack: its AssumeRole/identity calls, the pages of its
        # longest listing, one round of per-key reads; one after another, the chains add up.
        chain = 3 + max(math.ceil(keys / 100), 1) + 1
        m = Measurement(
            name=f"{label}: {size}, read quotas × {read_scale:g}",
            kind=kind,
            managed=stacks * keys,
            parallelism=bench.parallelism,
            wall_s=wall,
            calls=calls_by_op,
            throttled=throttled,
            errors=errors,
            failed=sum(1 for o in outcomes if o.failed),
            changes=sum(len(o.plan.changes) for o in outcomes if o.plan is not None),
            bounds=replace(
                _bounds(bench, calls_by_op, chain * (stacks if one_at_a_time else 1)),
                quota_s=slowest.seconds,
                quota_op=slowest.op,
                real_quota_s=real.seconds,
                real_quota_op=real.op,
            ),
            timeline=bench.last_timeline,
            max_inflight=bench.last_max_inflight,
            places=[
                {
                    "place": b.place,
                    "stacks": b.stacks,
                    "calls": b.calls,
                    "throttled": sum(int(c["throttled"]) for c in snap["places"][b.place].values()),
                    "bound_s": b.seconds,
                    "op": b.op,
                    "needed": b.op_calls,
                    # when the account-Region's calls of its bounding API began and ended
                    "op_span": snap["place_timeline"][b.place].get(b.op),
                }
                for b in bounds
            ],
        )
        m.notes.append(f"called as {how}")
        if seeded != stacks * keys:
            m.notes.append(f"seeded {seeded} keys, expected {stacks * keys}")
        for o in outcomes:
            if o.error is not None:
                m.notes.append(f"stack {o.stack.name} failed: {o.error}")
        out.append(m)
    return out


# ---------------------------------------------------------------------------------------------
# Apply


def apply_scenario(bench: Bench, *, managed: int) -> list[Measurement]:
    """Create N keys; change one attribute (a tag) on every key; plan again (clean)."""
    fresh_account(bench, unmanaged=0)
    aws = bench.aws()

    folder = write_manifest(bench.workdir / f"apply-{managed}", managed, revision=1)
    create = _measured_apply(
        bench,
        aws,
        km.load(folder),
        name=f"apply: create N={managed} keys",
        kind="apply-create",
        managed=managed,
        chain=2,  # CreateKey, then its alias/grant/rotation
    )
    write_manifest(folder, managed, revision=2)
    stack = km.load(folder)
    update = _measured_apply(
        bench,
        aws,
        stack,
        name=f"apply: change a tag on N={managed} keys",
        kind="apply-update",
        managed=managed,
        chain=1,
    )
    out = [create, update]

    control(bench.endpoint, "reset-stats")
    plan, wall = _timed(lambda: km.plan(aws, stack))
    calls, throttled, errors = _stats(bench)
    out.append(
        Measurement(
            name=f"re-plan after apply: N={managed}",
            kind="replan",
            managed=managed,
            parallelism=bench.parallelism,
            wall_s=wall,
            calls=calls,
            throttled=throttled,
            errors=errors,
            changes=len(plan.changes),
            bounds=_bounds(bench, calls, _plan_chain(calls)),
            timeline=bench.last_timeline,
            max_inflight=bench.last_max_inflight,
            notes=[]
            if not plan.changes
            else ["not clean: " + ", ".join(c.address for c in plan.changes[:5])],
        )
    )
    return out


def busy_apply_scenario(bench: Bench, *, managed: int, share: float) -> list[Measurement]:
    """Create N keys in a busy account: other callers leave kmsplan `share` of every quota.
    The proxy enforces the reduced quotas; kmsplan is not told (its limiter starts at the
    published ones) and has to find the rate that is left. Timed against the reduced bound."""
    saved = bench.proxy_quotas
    bench.proxy_quotas = scaled(REAL_QUOTAS, read_scale=share, write_scale=share)
    control(bench.endpoint, "configure", {"quotas": bench.proxy_quotas})
    try:
        fresh_account(bench, unmanaged=0)
        aws = km.clients(bench.endpoint, parallelism=bench.parallelism, quotas=None)
        folder = write_manifest(bench.workdir / f"busy-{managed}", managed, revision=1)
        m = _measured_apply(
            bench,
            aws,
            km.load(folder),
            name=f"apply, busy account ({share:.0%} of the quotas left): create N={managed} keys",
            kind="apply-busy",
            managed=managed,
            chain=2,
        )
    finally:
        bench.proxy_quotas = saved
        control(bench.endpoint, "configure", {"quotas": saved})
    rates = {op: aws.limiter.rate(op) for op in ("CreateKey", "CreateAlias", "CreateGrant")}
    m.notes.append(
        "kmsplan's rates at the end (published quota → adapted): "
        + ", ".join(
            f"{op} {REAL_QUOTAS[f'kms:{op}']:g} → {rate:.2f}/s"
            for op, rate in rates.items()
            if rate is not None
        )
        + "; throttled answers seen by the limiter: "
        + (", ".join(f"{op} {n}" for op, n in sorted(aws.limiter.throttles().items())) or "none")
    )
    return [m]


def _measured_apply(
    bench: Bench, aws: Any, stack: km.Stack, *, name: str, kind: str, managed: int, chain: int
) -> Measurement:
    """Plan `stack`, then apply the plan with the emulator's counters reset: the apply alone."""
    plan = km.plan(aws, stack)
    control(bench.endpoint, "reset-stats")
    result, wall = _timed(lambda: km.apply(aws, plan))
    calls, throttled, errors = _stats(bench)
    return Measurement(
        name=name,
        kind=kind,
        managed=managed,
        parallelism=bench.parallelism,
        wall_s=wall,
        calls=calls,
        throttled=throttled,
        errors=errors,
        failed=result.failed,
        changes=len(plan.changes),
        bounds=_bounds(bench, calls, chain=chain),
        timeline=bench.last_timeline,
        max_inflight=bench.last_max_inflight,
        notes=[] if result.ok else [f"apply failed: {result.detail}"],
    )


# ---------------------------------------------------------------------------------------------
# CPU only


def converged_live_state(stack: Any, *, drift_every: int = 0) -> Any:
    """The live state an apply of `stack` would leave, built in memory. With drift_every=k,
    every k-th key has a different `revision` tag, so the plan has changes to render."""
    from kmsplan.manifest.variables import resolve_variables
    from kmsplan.model import AliasTarget, KeyState, LiveState
    from kmsplan.plan.differ import reserved_tags

    stack = resolve_variables(stack, account_id=ACCOUNT, region=REGION)
    keys = []
    aliases: list[AliasTarget] = []
    for i, desired in enumerate(stack.keys):
        key_id = str(uuid.UUID(int=i + 1))
        tags = dict(desired.tags)
        if drift_every and i % drift_every == 0:
            tags["revision"] = "drifted"
        user_tags = tuple(sorted(tags.items()))
        keys.append(
            replace(
                desired,
                tags=user_tags,
                key_id=key_id,
                arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}",
                state=KeyState.ENABLED,
                policy_text=json.dumps(desired.policy) if desired.policy else None,
                grants=tuple(
                    replace(g, grant_id=f"{i:08x}{j:02x}") for j, g in enumerate(desired.grants)
                ),
                live_tags=tuple(sorted({**tags, **reserved_tags(stack.name, desired)}.items())),
                location=None,
            )
        )
        aliases.extend(AliasTarget(name=a, target_key_id=key_id) for a in desired.aliases)
    return LiveState(
        stack=stack.name,
        account_id=ACCOUNT,
        region=REGION,
        caller_arn=f"arn:aws:iam::{ACCOUNT}:root",
        keys=tuple(keys),
        aliases=tuple(aliases),
    )


def cpu_scenario(bench: Bench, *, managed: int) -> list[Measurement]:
    """Load + validate + diff + render N keys against an in-memory live state; no AWS."""
    folder = write_manifest(bench.workdir / f"cpu-{managed}", managed)
    phases: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def phase(name: str, fn: Callable[[], Any]) -> Any:
        c0, t0 = time.process_time(), time.perf_counter()
        value = fn()
        phases[name] = time.perf_counter() - t0
        cpu[name] = time.process_time() - c0
        return value

    stack = phase("load+validate", lambda: km.load(folder))
    live = converged_live_state(stack, drift_every=100)
    desired = phase(
        "resolve variables",
        lambda: km.resolve(stack, account_id=live.account_id, region=live.region),
    )
    plan = phase("diff", lambda: km.diff_resolved(desired, live))
    phase("render text", lambda: km.render_text(plan))
    with contextlib.suppress(ImportError):  # the JSON renderer may not exist yet
        phase("render json", lambda: km.render_json(plan))
    total = sum(phases.values())
    m = Measurement(
        name=f"CPU only: load+validate+diff+render N={managed}",
        kind="cpu",
        managed=managed,
        wall_s=total,
        changes=len(plan.changes),
        phases={**phases, **{f"cpu {k}": v for k, v in cpu.items()}},
    )
    without_load = total - phases["load+validate"]
    m.notes.append(
        f"without loading (resolve variables + diff + render): {without_load:.2f} s wall, "
        f"{sum(v for k, v in cpu.items() if k != 'load+validate'):.2f} s CPU"
    )
    return [m]


# The manifest fast paths, each on or off: (name, one-pass YAML event reader, quick schema check).
FAST_PATH_SETTINGS = (
    ("both fast paths", True, True),
    ("without the YAML event reader", False, True),
    ("without the quick schema check", True, False),
    ("without either (careful paths only)", False, False),
)


def fast_path_scenario(bench: Bench, *, managed: int, repeats: int = 1) -> list[Measurement]:
    """Load+validate the same N keys with the manifest fast paths on and off (CPU seconds, the
    best of `repeats` loads), and check that every setting loads the same stack."""
    folder = write_manifest(bench.workdir / f"fast-paths-{managed}", managed)
    seconds: dict[str, float] = {}
    stacks = []
    for name, yaml_events, quick_schema in FAST_PATH_SETTINGS:
        with km.manifest_fast_paths(yaml_events=yaml_events, quick_schema=quick_schema):
            best = float("inf")
            for _ in range(repeats):
                c0 = time.process_time()
                stack = km.load(folder)
                best = min(best, time.process_time() - c0)
        seconds[name] = best
        stacks.append(stack)
    if any(s != stacks[0] for s in stacks[1:]):
        raise AssertionError("the manifest fast paths changed what was loaded")
    both, careful = seconds["both fast paths"], seconds["without either (careful paths only)"]
    m = Measurement(
        name=f"manifest load+validate N={managed}: fast paths on and off",
        kind="fast-paths",
        managed=managed,
        wall_s=both,
        phases=seconds,
    )
    m.notes.append(
        f"load+validate {both:.2f} s CPU with the fast paths, {careful:.2f} s without: "
        f"{careful / both:.1f}x (best of {repeats})"
    )
    return [m]


# ---------------------------------------------------------------------------------------------
# Calibration


def calibrate_emulator(bench: Bench, *, calls: int = 400) -> float:
    """Calls/s the emulator sustains on plan-like reads with no latency and no quotas, using
    the same boto3 client stack as kmsplan and `bench.parallelism` threads."""
    import boto3

    fresh_account(bench, unmanaged=20)
    saved = control(bench.endpoint, "configure", {})
    control(bench.endpoint, "configure", {"latency_ms": 0, "quotas": {}})
    try:
        from botocore.config import Config

        kms = boto3.client(
            "kms",
            region_name=REGION,
            endpoint_url=bench.endpoint,
            config=Config(max_pool_connections=bench.parallelism),
        )
        key_ids = [k["KeyId"] for k in kms.list_keys(Limit=100)["Keys"]]
        ops = [
            lambda k: kms.describe_key(KeyId=k),
            lambda k: kms.get_key_policy(KeyId=k, PolicyName="default"),
            lambda k: kms.get_key_rotation_status(KeyId=k),
            lambda k: kms.list_resource_tags(KeyId=k),
            lambda k: kms.list_grants(KeyId=k),
        ]
        work: list[tuple[Callable[[str], Any], str]] = [
            (ops[i % len(ops)], key_ids[i % len(key_ids)]) for i in range(calls)
        ]
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    if not work:
                        return
                    fn, key_id = work.pop()
                fn(key_id)

        threads = [threading.Thread(target=worker) for _ in range(bench.parallelism)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rate = calls / (time.perf_counter() - start)
    finally:
        control(
            bench.endpoint,
            "configure",
            {"latency_ms": saved["latency_ms"], "quotas": saved["quotas"]},
        )
    bench.emulator_rate = rate
    return rate
