"""The scheduling benchmark runs, and its plans apply in full with the no-op client."""

from __future__ import annotations

from bench.scheduling import main, measure, plan_of


def test_scheduling_bench_applies_every_change_of_its_plan() -> None:
    plan = plan_of(200)
    assert len(plan.changes) == 200
    assert any(c.address.step is not None for c in plan.changes)
    _, _, done = measure(200, parallelism=4)
    assert done == 200


def test_scheduling_bench_prints_a_row_per_size(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--sizes", "40,80", "--repeat", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["40", "80"]
