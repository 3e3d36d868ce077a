"""Shared helpers of the lint tests: where the fixtures are and how they are loaded."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmsplan.lint.engine import lint_stack
from kmsplan.lint.finding import Finding
from kmsplan.manifest import load
from kmsplan.model import Stack

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "lint"
EXAMPLES = ROOT / "examples"
SARIF_SCHEMA = ROOT / "tests" / "fixtures" / "sarif-2.1.0.json"


def fixture(rule_id: str, kind: str) -> Path:
    return FIXTURES / rule_id / f"{kind}.yaml"


def live_policies(path: Path, stack: Stack) -> Mapping[str, Mapping[str, Any]] | None:
    """`<kind>.live.json` beside a fixture is the live policy of the fixture's only key."""
    live = path.with_suffix(".live.json")
    if not live.exists():
        return None
    (key,) = stack.keys
    return {key.name: json.loads(live.read_text(encoding="utf-8"))}


def lint_file(path: Path) -> list[Finding]:
    """Load a manifest through the real loader (paths relative to the repository, as a user
    in its root would give them) and lint it."""
    relative = path.relative_to(ROOT)
    stack = load([str(relative)])
    return lint_stack(stack, live_policies=live_policies(relative, stack))
