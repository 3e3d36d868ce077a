"""The files other tools read: pre-commit hooks and the GitHub Actions example. Every kmsplan
command line in them must use commands and options the CLI really has."""

from __future__ import annotations

import re
import shlex
from typing import Any

import click
import yaml
from lint_helpers import EXAMPLES, ROOT

from kmsplan.cli import cli

WORKFLOW = EXAMPLES / "ci" / "github-actions.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"


def _option_names(command: click.Command) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def _check_invocation(words: list[str]) -> None:
    assert words[0] == "kmsplan", words
    command = cli.commands.get(words[1])
    assert command is not None, f"unknown command in {words}"
    known = _option_names(command)
    for word in words[2:]:
        if word.startswith("-"):
            assert word.split("=", 1)[0] in known, f"{words[1]} has no option {word}"


def _kmsplan_lines(script: str) -> list[list[str]]:
    found = []
    for line in script.splitlines():
        line = line.strip()
        match = re.search(r"(?:^|\s)(kmsplan\s.*?)(?:\s*[>|]|$)", line)
        if match and not line.startswith("#") and "pip install" not in line:
            found.append(shlex.split(match.group(1)))
    return found


def _workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return document


def _steps() -> list[dict[str, Any]]:
    return [step for job in _workflow()["jobs"].values() for step in job["steps"]]


def test_pre_commit_hooks_run_real_commands_on_whole_stacks() -> None:
    hooks = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert [h["id"] for h in hooks] == ["kmsplan-validate", "kmsplan-lint"]
    for hook in hooks:
        assert hook["language"] == "python"
        assert hook["pass_filenames"] is False  # a stack is checked as a whole
        _check_invocation(shlex.split(hook["entry"]))
        assert re.search(hook["files"], "kms/payments.yaml")
        assert re.search(hook["files"], "kms/policies/orders.json")


def test_workflow_runs_only_real_kmsplan_commands_and_options() -> None:
    lines = [words for step in _steps() for words in _kmsplan_lines(step.get("run", ""))]
    assert {words[1] for words in lines} == {"lint", "stacks", "iam-policy", "plan", "apply"}
    for words in lines:
        _check_invocation(words)


def test_workflow_posts_the_markdown_plan_uploads_sarif_and_applies_the_saved_plan() -> None:
    workflow = _workflow()
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean true; GitHub reads it as "on".
    assert set(workflow[True]) == {"pull_request", "push"}
    runs = "\n".join(step.get("run", "") for step in _steps())
    assert "kmsplan plan ${{ matrix.path }} --format markdown --detailed-exitcode > plan.md" in runs
    assert "gh pr comment" in runs
    assert 'kmsplan lint "$MANIFESTS" --format sarif --output kmsplan.sarif' in runs
    assert "kmsplan apply --plan plan.kmsplan --auto-approve" in runs
    uses = [step.get("uses", "") for step in _steps()]
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    lint_job = workflow["jobs"]["lint"]
    assert lint_job["permissions"]["security-events"] == "write"
    upload = next(s for s in lint_job["steps"] if "upload-sarif" in s.get("uses", ""))
    assert upload["if"] == "always()"
    assert workflow["jobs"]["apply-main"]["needs"] == ["stacks", "plan-main"]
    assert workflow["jobs"]["apply-main"]["environment"]
