"""Commands stay thin: reading live state, identity and writing go through the run layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

COMMANDS = Path(__file__).resolve().parents[3] / "kmsplan" / "commands"
# What only the run layer does for a command.
RUN_LAYER_ONLY = {
    ("kmsplan.aws.reader", "read_live"),
    ("kmsplan.aws.client", "caller_identity"),
    ("kmsplan.apply", "apply_plan"),
    ("kmsplan.apply.executor", "apply_plan"),
    ("kmsplan.plan.differ", "diff"),
    ("kmsplan.manifest.variables", "resolve_variables"),
    ("kmsplan.manifest", "resolve_variables"),
}


def _imported(path: Path) -> set[tuple[str, str]]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.update((node.module, alias.name) for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(COMMANDS.glob("*.py")), ids=lambda p: p.name)
def test_commands_leave_live_reads_identity_and_writes_to_the_run_layer(path: Path) -> None:
    assert not _imported(path) & RUN_LAYER_ONLY
    assert "kmsplan.runner" not in {module for module, _ in _imported(path)}
