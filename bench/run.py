"""Run the benchmark: `python -m bench [--quick]` (or `python bench/run.py`). See README.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.quotas import REAL_QUOTAS, scaled
from bench.report import full_report
from bench.scenarios import (
    Bench,
    Measurement,
    apply_scenario,
    busy_apply_scenario,
    calibrate_emulator,
    cpu_scenario,
    fast_path_scenario,
    plan_scenario,
    quota_bound_plan_scenario,
    stacks_scenario,
)

SCENARIOS = ("plan", "stacks", "apply", "busy", "cpu")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (N=20/100, U=0/500, 6 stacks × 5 keys, apply N=10, busy apply N=10, "
        "CPU N=1000)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=20.0,
        help="added to every request (default 20, a network round trip)",
    )
    p.add_argument(
        "--read-quota-scale",
        type=float,
        default=1.0,
        help="multiply KMS's read quotas (default 1: KMS's published values)",
    )
    p.add_argument(
        "--write-quota-scale",
        type=float,
        default=1.0,
        help="multiply KMS's write quotas (default 1)",
    )
    p.add_argument("--parallelism", type=int, default=16, help="kmsplan --parallelism")
    p.add_argument("--plan-keys", type=_ints, default=None, help="N values, e.g. 100,1000")
    p.add_argument("--unmanaged", type=_ints, default=None, help="U values, e.g. 0,5000")
    p.add_argument(
        "--sequential-keys",
        type=_ints,
        default=None,
        help="N values that also run the sequential-reader baseline (U=0)",
    )
    p.add_argument(
        "--quota-plan-keys",
        type=int,
        default=None,
        help="N for the plan with scaled-down read quotas (0: skip)",
    )
    p.add_argument(
        "--quota-plan-scale",
        type=float,
        default=0.1,
        help="read-quota scale of that plan (default 0.1: ListGrants 10/s)",
    )
    p.add_argument(
        "--stacks",
        type=int,
        default=None,
        help="stacks planned in one run, spread over 2 accounts × 3 Regions (0: skip)",
    )
    p.add_argument("--stacks-keys", type=int, default=None, help="keys in each of those stacks")
    p.add_argument(
        "--stacks-quota-scale",
        type=float,
        default=0.05,
        help="read-quota scale of the several-stacks plans (default 0.05: ListGrants 5/s "
        "per account-Region)",
    )
    p.add_argument("--apply-keys", type=int, default=None, help="N for the apply scenarios")
    p.add_argument(
        "--busy-keys", type=int, default=None, help="N for the apply in a busy account (0: skip)"
    )
    p.add_argument(
        "--busy-share",
        type=float,
        default=0.1,
        help="share of every quota other callers leave in the busy account (default 0.1)",
    )
    p.add_argument("--cpu-keys", type=int, default=None, help="N for the CPU-only scenario")
    p.add_argument(
        "--only",
        choices=SCENARIOS,
        action="append",
        help="run only these scenario groups (repeatable)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write raw results here")
    p.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    args = p.parse_args(argv)
    full = {
        "plan_keys": [100, 1000],
        "unmanaged": [0, 5000],
        "sequential_keys": [1000],
        "apply_keys": 200,
        "cpu_keys": 10_000,
        "quota_plan_keys": 200,
        "busy_keys": 200,
        "stacks": 20,
        "stacks_keys": 50,
    }
    quick = {
        "plan_keys": [20, 100],
        "unmanaged": [0, 500],
        "sequential_keys": [100],
        "apply_keys": 10,
        "cpu_keys": 1000,
        "quota_plan_keys": 20,
        "busy_keys": 10,
        "stacks": 6,
        "stacks_keys": 5,
    }
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


class EmulatorProcess:
    """`python -m bench.emulator` in its own process (its own interpreter lock)."""

    def __init__(self, latency_ms: float) -> None:
        root = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.emulator", "--latency-ms", str(latency_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=root,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the emulator process did not start")
        self.endpoint: str = json.loads(line)["endpoint"]

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _aws_env() -> None:
    """Dummy credentials; never reach a real account (the endpoint is the local proxy)."""
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        del os.environ[var]
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> tuple[list[Measurement], float]:
    from bench.emulator import control

    _aws_env()
    groups = args.only or list(SCENARIOS)
    quotas = scaled(
        REAL_QUOTAS, read_scale=args.read_quota_scale, write_scale=args.write_quota_scale
    )
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="kmsplan-bench-") as tmp:
        uses_aws = {"plan", "stacks", "apply", "busy"} & set(groups)
        emulator = EmulatorProcess(args.latency_ms) if uses_aws else None
        bench = Bench(
            endpoint=emulator.endpoint if emulator else "",
            latency_s=args.latency_ms / 1000,
            proxy_quotas=quotas,
            parallelism=args.parallelism,
            workdir=Path(tmp),
        )
        try:
            if emulator:
                control(bench.endpoint, "configure", {"quotas": quotas})
                rate = calibrate_emulator(bench)
                _log(f"emulator capacity: {rate:.0f} calls/s (no latency, no quotas)")
            if "cpu" in groups:
                results += _step(lambda: cpu_scenario(bench, managed=args.cpu_keys))
                for n in sorted({1000, args.cpu_keys}):
                    results += _step(
                        lambda n=n: fast_path_scenario(
                            bench, managed=n, repeats=3 if n <= 1000 else 1
                        )
                    )
            if "plan" in groups:
                for n in args.plan_keys:
                    for u in args.unmanaged:
                        seq = u == 0 and n in args.sequential_keys
                        results += _step(
                            lambda n=n, u=u, seq=seq: plan_scenario(
                                bench, managed=n, unmanaged=u, sequential_too=seq
                            )
                        )
            if "plan" in groups and args.quota_plan_keys:
                results += _step(
                    lambda: quota_bound_plan_scenario(
                        bench, managed=args.quota_plan_keys, read_scale=args.quota_plan_scale
                    )
                )
            if "stacks" in groups and args.stacks:
                results += _step(
                    lambda: stacks_scenario(
                        bench,
                        stacks=args.stacks,
                        keys=args.stacks_keys,
                        read_scale=args.stacks_quota_scale,
                    )
                )
            if "apply" in groups:
                results += _step(lambda: apply_scenario(bench, managed=args.apply_keys))
            if "busy" in groups and args.busy_keys:
                results += _step(
                    lambda: busy_apply_scenario(
                        bench, managed=args.busy_keys, share=args.busy_share
                    )
                )
        finally:
            if emulator:
                emulator.stop()
    return results, bench.emulator_rate


def _step(fn: object) -> list[Measurement]:
    assert callable(fn)
    start = time.perf_counter()
    try:
        out: list[Measurement] = fn()
    except Exception as exc:  # a scenario that fails is reported, the others still run
        _log(f"  FAILED: {type(exc).__name__}: {exc}")
        return [
            Measurement(
                name=f"failed: {type(exc).__name__}",
                kind="error",
                notes=[f"{type(exc).__name__}: {exc}"],
            )
        ]
    for m in out:
        _log(
            f"  {m.name}: {m.wall_s:.2f} s, {m.total_calls} calls, {m.throttled} throttled"
            f" ({time.perf_counter() - start:.0f} s with setup)"
        )
    return out


def header(args: argparse.Namespace, argv: list[str], elapsed: float, emulator_rate: str) -> str:
    cmd = "python -m bench " + " ".join(argv)
    return (
        f"Command: `{cmd.strip()}`  \n"
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; whole run {elapsed:.0f} s  \n"
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}  \n"
        f"Latency {args.latency_ms:g} ms per request; quotas × {args.read_quota_scale:g} (reads), "
        f"× {args.write_quota_scale:g} (writes); kmsplan parallelism {args.parallelism}; "
        f"{emulator_rate}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    start = time.perf_counter()
    results, rate = run(args)
    elapsed = time.perf_counter() - start
    capacity = f"emulator capacity {rate:.0f} calls/s (measured: no latency, no quotas)"
    text = full_report(results, header(args, argv, elapsed, capacity if rate else ""))
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps([m.to_json() for m in results], indent=2), encoding="utf-8")
    return 1 if any(m.kind == "error" for m in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
