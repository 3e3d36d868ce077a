"""Golden renderings of one plan that uses every feature: what reviewers read in pull requests.

The files in this folder are compared byte for byte. After an intended change to a renderer,
regenerate them with

    KMSPLAN_UPDATE_GOLDEN=1 pytest tests/golden

and review the diff of the .txt/.md/.json files like code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from golden.sample_plan import build_sample_plan

from kmsplan.plan.serialize import plan_from_dict
from kmsplan.plan.types import Plan
from kmsplan.render import json as json_render
from kmsplan.render import markdown, text

HERE = Path(__file__).resolve().parent
SCHEMA = HERE.parents[1] / "schemas" / "plan.schema.json"
UPDATE = os.environ.get("KMSPLAN_UPDATE_GOLDEN") == "1"

RENDERERS: dict[str, Callable[[Plan], str]] = {
    "plan.txt": lambda plan: text.render(plan, color=False),
    "plan.color.txt": lambda plan: text.render(plan, color=True),
    "plan.json": json_render.render,
    "plan.md": markdown.render,
}


@pytest.mark.parametrize("filename", sorted(RENDERERS))
def test_rendering_matches_golden_file(filename: str) -> None:
    rendered = RENDERERS[filename](build_sample_plan())
    golden = HERE / filename
    if UPDATE:
        golden.write_text(rendered, encoding="utf-8", newline="\n")
    assert golden.exists(), f"{golden} is missing: run KMSPLAN_UPDATE_GOLDEN=1 pytest tests/golden"
    assert rendered == golden.read_text(encoding="utf-8"), (
        f"{filename} differs from the golden file; if the change is intended, "
        "regenerate with KMSPLAN_UPDATE_GOLDEN=1 pytest tests/golden and review the diff"
    )


def test_golden_json_validates_and_reads_back_as_the_sample_plan() -> None:
    document = json.loads((HERE / "plan.json").read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)
    assert plan_from_dict(document) == build_sample_plan()


def test_sample_plan_exercises_every_feature() -> None:
    plan = build_sample_plan()
    seen = {(c.resource.value, c.action.value, c.is_blocked) for c in plan.changes}
    assert {
        ("key", "create", False),
        ("alias", "create", False),
        ("grant", "create", False),
        ("key", "update", False),
        ("alias", "update", False),
        ("grant", "update", False),
        ("key", "restore", False),
        ("alias", "delete", False),
        ("key", "delete", True),
    } <= seen
    assert sum(c.policy_diff is not None for c in plan.changes) == 2
    assert plan.unmanaged and plan.warnings and plan.cost
    assert any(f.suppressed for f in plan.findings)
    assert any(not f.suppressed for f in plan.findings)
