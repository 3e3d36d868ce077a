"""The JSON renderer prints the public plan document, nothing more."""

from __future__ import annotations

import json

from golden.sample_plan import build_sample_plan

from kmsplan.plan.serialize import plan_from_dict, plan_to_dict
from kmsplan.render import json as json_render


def test_json_is_the_plan_document_indented_with_a_final_newline() -> None:
    plan = build_sample_plan()
    out = json_render.render(plan)
    assert out == json.dumps(plan_to_dict(plan), indent=2) + "\n"
    assert out.startswith('{\n  "format_version": 2,\n  "kmsplan_version": "0.1.0",\n')
    assert plan_from_dict(json.loads(out)) == plan


def test_json_is_ascii_so_any_terminal_encoding_can_print_it() -> None:
    out = json_render.render(build_sample_plan())
    assert out.isascii()
    assert "grant 0f1e2d3c\\u2026 on key invoices" in out
