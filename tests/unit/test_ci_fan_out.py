"""The CI fan-out: the GitHub Actions example lists the stacks and runs one job per stack
with the stack's role, and the composite action (action.yml) installs kmsplan and runs a
command. Both parse as YAML, and what they run exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kmsplan.cli import cli
from kmsplan.commands.stacks import MATRIX_KEYS

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
ACTION = ROOT / "action.yml"
MATRIX = "${{ fromJSON(needs.stacks.outputs.matrix) }}"
PER_STACK_JOBS = ("plan-pr", "plan-main", "apply-main")


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def run_script(step: dict[str, Any]) -> str:
    return str(step.get("run", ""))


def test_one_job_lists_the_stacks_and_each_stack_gets_its_own_jobs() -> None:
    jobs = load(WORKFLOW)["jobs"]
    stacks = jobs["stacks"]
    assert stacks["outputs"]["matrix"] == "${{ steps.stacks.outputs.matrix }}"
    (step,) = [s for s in stacks["steps"] if s.get("id") == "stacks"]
    assert '--format github-matrix)" >> "$GITHUB_OUTPUT"' in run_script(step)
    for name in PER_STACK_JOBS:
        job = jobs[name]
        assert "stacks" in job["needs"], name
        assert job["strategy"]["matrix"] == MATRIX, name
        assert job["strategy"]["fail-fast"] is False, name
        (credentials,) = [
            s
            for s in job["steps"]
            if s.get("uses", "").startswith("aws-actions/configure-aws-credentials")
        ]
        assert credentials["with"]["role-to-assume"] == "${{ matrix.role || env.DEFAULT_ROLE }}"
        assert credentials["with"]["aws-region"] == "${{ matrix.region || env.AWS_REGION }}"
    assert jobs["apply-main"]["environment"]
    # A pull request's plan runs with a read-only session of the stack's role.
    pr = jobs["plan-pr"]
    (policy,) = [s for s in pr["steps"] if s.get("id") == "policy"]
    assert "kmsplan iam-policy --for plan ${{ matrix.path }}" in run_script(policy)
    (credentials,) = [s for s in pr["steps"] if "inline-session-policy" in s.get("with", {})]
    assert credentials["with"]["inline-session-policy"] == "${{ steps.policy.outputs.json }}"


def test_the_workflow_uses_only_matrix_keys_that_stacks_prints() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    used = set(re.findall(r"matrix\.([a-z_]+)", text))
    assert used and used <= set(MATRIX_KEYS), used


# ---- the composite action ----------------------------------------------------------------


def test_the_action_is_a_composite_that_installs_kmsplan_and_runs_the_command() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert action["inputs"]["command"]["required"] is True
    assert set(action["outputs"]) == {"exitcode", "output"}
    steps = action["runs"]["steps"]
    scripts = "\n".join(run_script(s) for s in steps)
    assert 'pip install --quiet "kmsplan==$KMSPLAN_VERSION"' in scripts
    assert "kmsplan $KMSPLAN_COMMAND" in scripts
    # Inputs reach the scripts through the environment, never spliced into the script.
    assert "${{ inputs." not in scripts
    for step in steps:
        if "run" in step:
            assert step["shell"] == "bash"


def _action_run_step() -> dict[str, Any]:
    (step,) = [s for s in load(ACTION)["runs"]["steps"] if s.get("id") == "run"]
    return step


@pytest.mark.parametrize(
    ("command", "ok", "step_code", "exitcode"),
    [
        ("validate examples/payments", "0 2", 0, "0"),
        ("lint examples/bad", "0 2", 1, "1"),  # error findings: exit 1
        ("stacks examples/payments --format github-matrix", "0 2", 0, "0"),
        ("validate examples/payments", "2", 1, "0"),  # 0 not allowed: the step still fails
    ],
)
def test_the_action_runs_the_command_and_reports_its_exit_code(
    tmp_path: Path, command: str, ok: str, step_code: int, exitcode: str
) -> None:
    output_file = tmp_path / "github_output"
    env = {
        **os.environ,
        # The kmsplan installed beside this Python, as the action's install step leaves it.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "KMSPLAN_COMMAND": command,
        "KMSPLAN_OK": ok,
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_OUTPUT": str(output_file),
    }
    script = run_script(_action_run_step())
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == step_code, done.stdout + done.stderr
    outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines())
    assert outputs["exitcode"] == exitcode
    printed = Path(outputs["output"]).read_text(encoding="utf-8")
    assert printed and printed in done.stdout
    assert command.split()[0] in cli.commands
