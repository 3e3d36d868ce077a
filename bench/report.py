"""Turn measurements into the Markdown tables of bench/RESULTS.md."""

from __future__ import annotations

from collections.abc import Sequence

from bench.scenarios import Measurement

# The reads kmsplan makes once per managed key (the rest is per plan or per page).
PER_KEY_READS = (
    "ListResourceTags",
    "DescribeKey",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "ListGrants",
)


def _short(op: str) -> str:
    return op.split(":", 1)[1] if ":" in op else op


def _calls_by_op(m: Measurement) -> str:
    return ", ".join(f"{_short(op)} {n}" for op, n in sorted(m.calls.items(), key=lambda x: -x[1]))


def _ratio(wall: float, bound: float) -> str:
    return f"{wall / bound:.2f}×" if bound > 0 else "—"


def main_table(results: Sequence[Measurement]) -> str:
    rows = [
        "| scenario | wall s | calls | throttled | failed | changes | quota bound s | "
        "latency bound s | ratio to lower bound | emulator bound s | ratio incl. emulator | "
        "limited by | real-KMS floor s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for m in results:
        if m.kind in ("cpu", "fast-paths") or m.bounds is None:
            continue
        b = m.bounds
        floor = max(b.real_quota_s, b.latency_s)
        rows.append(
            f"| {m.name} | {m.wall_s:.2f} | {m.total_calls} | {m.throttled} | {m.failed} | "
            f"{m.changes if m.changes is not None else '—'} | {b.quota_s:.2f} "
            f"({_short(b.quota_op) or '—'}) | {b.latency_s:.2f} ({b.chain}) | "
            f"{_ratio(m.wall_s, b.lower_s)} | {b.emulator_s:.2f} | "
            f"{_ratio(m.wall_s, b.lower_with_emulator_s)} | {b.limited_by} | {floor:.2f} |"
        )
    return "\n".join(rows)


def calls_table(results: Sequence[Measurement]) -> str:
    rows = ["| scenario | API calls by operation |", "|---|---|"]
    for m in results:
        if m.calls:
            rows.append(f"| {m.name} | {_calls_by_op(m)} |")
    return "\n".join(rows)


def per_key_table(results: Sequence[Measurement]) -> str:
    """Calls per managed key, and what the unmanaged keys add (per 100 of them)."""
    plans = {(m.managed, m.unmanaged): m for m in results if m.kind == "plan"}
    rows = [
        "| N managed | U unmanaged | calls | calls per managed key (all calls / N) | "
        "per-key reads / N | extra calls for U | extra per 100 unmanaged |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (n, u), m in sorted(plans.items()):
        base = plans.get((n, 0))
        extra = m.total_calls - base.total_calls if base is not None and u else 0
        per100 = f"{extra / (u / 100):.2f}" if u and base is not None else "—"
        per_key = (base or m).total_calls / n if n else 0
        reads = sum(m.calls.get(f"kms:{op}", 0) for op in PER_KEY_READS) / n if n else 0
        rows.append(
            f"| {n} | {u} | {m.total_calls} | {per_key:.2f} | {reads:.2f} | "
            f"{extra if u else '—'} | {per100} |"
        )
    return "\n".join(rows)


def concurrency_table(results: Sequence[Measurement]) -> str:
    seq = {(m.managed, m.unmanaged): m for m in results if m.kind == "plan-sequential"}
    rows = [
        "| plan | concurrent s (parallelism) | sequential s | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for m in results:
        if m.kind == "plan" and (m.managed, m.unmanaged) in seq:
            s = seq[(m.managed, m.unmanaged)]
            rows.append(
                f"| N={m.managed} U={m.unmanaged} | {m.wall_s:.2f} ({m.parallelism}) | "
                f"{s.wall_s:.2f} | {s.wall_s / m.wall_s:.1f}× |"
            )
    return "\n".join(rows)


def stacks_table(results: Sequence[Measurement]) -> str:
    """Several stacks in one plan: each row against the slowest account-Region's quota bound
    (the most any run can be held to: account-Regions have quotas of their own), and against
    the sum of the account-Regions' bounds (the least a run that plans one stack at a time
    needs)."""
    measured = [m for m in results if m.kind in ("stacks", "stacks-sequential")]
    if not measured:
        return "(not run)"
    rows = [
        "| plan | wall s | calls | throttled | failed stacks | changes | quota bound s "
        "(slowest account-Region) | ratio to quota bound | sum of the account-Regions' "
        "bounds s | ratio to the sum | emulator bound s | limited by |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for m in measured:
        b = m.bounds
        if b is None or not m.places:
            continue
        slowest = [p for p in m.places if p["bound_s"] == m.places[0]["bound_s"]]
        where = str(slowest[0]["place"])
        if len(slowest) > 1:
            where += f" and {len(slowest) - 1} more at the same bound"
        total = sum(float(p["bound_s"]) for p in m.places)
        limited_by = b.limited_by
        if m.kind == "stacks-sequential" and total > b.lower_with_emulator_s:
            limited_by = "one stack at a time (the account-Regions take turns)"
        rows.append(
            f"| {m.name} | {m.wall_s:.2f} | {m.total_calls} | {m.throttled} | {m.failed} | "
            f"{m.changes if m.changes is not None else '—'} | {b.quota_s:.2f} "
            f"({_short(b.quota_op) or '—'}; {where}) | {_ratio(m.wall_s, b.quota_s)} | "
            f"{total:.2f} | {_ratio(m.wall_s, total)} | {b.emulator_s:.2f} | {limited_by} |"
        )
    return "\n".join(rows)


def places_table(results: Sequence[Measurement]) -> str:
    """Per account-Region, for each several-stacks row: stacks, calls, throttled calls, quota
    bound, and when its calls of the bounding API began and ended (seconds after the start),
    with the rate they got: the bounding API's needed calls over that span (not for stacks
    planned one after another, whose span holds the other account-Regions' turns)."""
    rows = [
        "| plan | account/Region | stacks | calls | throttled | quota bound s | bounding API "
        "calls from–to s | their rate /s |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for m in results:
        for p in m.places:
            span, rate = "—", "—"
            if p.get("op_span"):
                first, last = p["op_span"]
                span = f"{first:.2f}–{last:.2f}"
                if "needed" in p and last > first and m.kind != "stacks-sequential":
                    rate = f"{p['needed'] / (last - first):.2f}"
            rows.append(
                f"| {m.name} | {p['place']} | {p['stacks']} | {p['calls']} | "
                f"{p.get('throttled', '—')} | {p['bound_s']:.2f} ({_short(str(p['op'])) or '—'}) "
                f"| {span} | {rate} |"
            )
    return "\n".join(rows)


def cpu_table(results: Sequence[Measurement]) -> str:
    rows = ["| scenario | phase | wall s | CPU s |", "|---|---|---:|---:|"]
    for m in results:
        if m.kind != "cpu":
            continue
        for phase, wall in m.phases.items():
            if phase.startswith("cpu "):
                continue
            rows.append(f"| {m.name} | {phase} | {wall:.3f} | {m.phases['cpu ' + phase]:.3f} |")
        rows.append(f"| {m.name} | **total** | {m.wall_s:.3f} | |")
    return "\n".join(rows)


def fast_path_table(results: Sequence[Measurement]) -> str:
    """Manifest load+validate CPU seconds with each fast path on or off."""
    measured = [m for m in results if m.kind == "fast-paths"]
    if not measured:
        return "(not run)"
    settings = list(measured[0].phases)
    rows = [
        "| N keys | " + " | ".join(f"{s} s" for s in settings) + " | careful ÷ fast |",
        "|---:|" + "---:|" * (len(settings) + 1),
    ]
    for m in measured:
        times = [m.phases[s] for s in settings]
        rows.append(
            f"| {m.managed} | "
            + " | ".join(f"{t:.2f}" for t in times)
            + f" | {times[-1] / times[0]:.1f}× |"
        )
    return "\n".join(rows)


def timeline_table(results: Sequence[Measurement]) -> str:
    """When each API was first and last called: shows which phase waited for which."""
    rows = [
        "| scenario | max in flight | API: first–last call (s after start) |",
        "|---|---:|---|",
    ]
    for m in results:
        if not m.timeline:
            continue
        spans = sorted(m.timeline.items(), key=lambda kv: kv[1][0])
        text = ", ".join(f"{_short(op)} {a:.2f}–{b:.2f}" for op, (a, b) in spans)
        rows.append(f"| {m.name} | {m.max_inflight} | {text} |")
    return "\n".join(rows)


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets_table(results: Sequence[Measurement]) -> str:
    """Each benchmark target next to what this run measured."""
    by_kind: dict[str, list[Measurement]] = {}
    for m in results:
        by_kind.setdefault(m.kind, []).append(m)
    rows = ["| target | measured | verdict |", "|---|---|---|"]
    plans = {(m.managed, m.unmanaged): m for m in by_kind.get("plan", [])}
    if plans:
        n = max(k[0] for k in plans)
        base = plans.get((n, 0))
        if base is not None:
            per_key = base.total_calls / n
            reads = sum(base.calls.get(f"kms:{op}", 0) for op in PER_KEY_READS) / n
            rows.append(
                f"| plan: calls per managed key ≤ 5 | {per_key:.2f} at N={n} "
                f"({reads:.2f} per-key reads + {base.total_calls - round(reads * n)} per plan) "
                f"| {_verdict(per_key <= 5)} |"
            )
            for (nn, u), m in sorted(plans.items()):
                if nn == n and u:
                    per100 = (m.total_calls - base.total_calls) / (u / 100)
                    rows.append(
                        f"| plan: unmanaged keys ≤ 1 call per 100 | {per100:.2f} per 100 "
                        f"(U={u}, N={n}) | {_verdict(per100 <= 1)} |"
                    )
            if base.bounds is not None:
                ratio = base.wall_s / base.bounds.lower_s
                with_emu = base.wall_s / base.bounds.lower_with_emulator_s
                rows.append(
                    f"| plan: wall ≤ 1.5× lower bound at N={n} | {ratio:.2f}× "
                    f"(incl. the emulator's bound: {with_emu:.2f}×) | {_verdict(ratio <= 1.5)} "
                    f"(incl. emulator: {_verdict(with_emu <= 1.5)}) |"
                )
    for m in by_kind.get("plan-quota", []):
        if m.bounds is not None:
            ratio = m.wall_s / m.bounds.lower_s
            rows.append(
                f"| plan at the quota (reads scaled down) ≤ 1.5× | {ratio:.2f}× ({m.name}) "
                f"| {_verdict(ratio <= 1.5)} |"
            )
    for m in by_kind.get("apply-create", []) + by_kind.get("apply-update", []):
        if m.bounds is not None:
            ratio = m.wall_s / m.bounds.quota_s if m.bounds.quota_s else 0.0
            rows.append(
                f"| {m.name}: wall ≤ 1.3× quota bound | {ratio:.2f}× ({m.wall_s:.1f} s vs "
                f"{m.bounds.quota_s:.1f} s, {_short(m.bounds.quota_op)}) "
                f"| {_verdict(ratio <= 1.3)} |"
            )
            rows.append(
                f"| {m.name}: zero failed calls, throttling absorbed by retries | "
                f"{m.failed} failed changes, {m.throttled} throttled then retried, "
                f"{m.errors} error answers | {_verdict(m.failed == 0 and m.errors == 0)} |"
            )
    for m in by_kind.get("apply-busy", []):
        if m.bounds is not None:
            ratio = m.wall_s / m.bounds.quota_s if m.bounds.quota_s else 0.0
            rows.append(
                f"| {m.name}: every change applied, none failed | {m.failed} failed changes, "
                f"{m.throttled} throttled then retried, {m.errors} error answers "
                f"| {_verdict(m.failed == 0 and m.errors == 0)} |"
            )
            rows.append(
                f"| {m.name}: wall vs the reduced quota bound (reported) | {ratio:.2f}× "
                f"({m.wall_s:.1f} s vs {m.bounds.quota_s:.1f} s, {_short(m.bounds.quota_op)}) "
                "| — |"
            )
    for m in by_kind.get("replan", []):
        rows.append(
            f"| re-plan after apply is clean | {m.changes} changes | {_verdict(m.changes == 0)} |"
        )
    for m in by_kind.get("cpu", []):
        load = m.phases.get("load+validate", 0.0)
        rows.append(
            f"| CPU path for N={m.managed} under 1 s | {m.wall_s:.2f} s in all "
            f"(load+validate {load:.2f} s; the rest {m.wall_s - load:.2f} s) "
            f"| {_verdict(m.wall_s < 1)} |"
        )
    return "\n".join(rows)


def full_report(results: Sequence[Measurement], header: str) -> str:
    notes = [f"- {m.name}: {n}" for m in results for n in m.notes]
    parts = [
        header,
        "### Targets\n\n" + targets_table(results),
        "### Scenarios\n\n" + main_table(results),
        "### Plan: calls per managed key and cost of unmanaged keys\n\n" + per_key_table(results),
        "### Plan: concurrent vs sequential reader\n\n" + concurrency_table(results),
        "### Several stacks over accounts and Regions\n\n" + stacks_table(results),
        "### Several stacks: each account-Region\n\n" + places_table(results),
        "### CPU only (no AWS)\n\n" + cpu_table(results),
        "### Manifest fast paths (load+validate, CPU s)\n\n" + fast_path_table(results),
        "### API calls by operation\n\n" + calls_table(results),
        "### Timeline (from the proxy)\n\n" + timeline_table(results),
    ]
    if notes:
        parts.append("### Notes from the run\n\n" + "\n".join(notes))
    return "\n\n".join(parts) + "\n"
