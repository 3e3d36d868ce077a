"""The plan as its public JSON document (schemas/plan.schema.json)."""

from __future__ import annotations

import json

from kmsplan.plan.serialize import plan_to_dict
from kmsplan.plan.types import Plan


def render(plan: Plan) -> str:
    """The plan document, indented, members in the documented order, ending with a newline."""
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=False) + "\n"
