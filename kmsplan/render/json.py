"""Plans as their public JSON documents (schemas/plan.schema.json): the plan of one stack, or
the run of several."""

from __future__ import annotations

import json
from collections.abc import Sequence

from kmsplan.plan.serialize import plan_to_dict, run_to_dict
from kmsplan.plan.types import Plan
from kmsplan.render.run import Outcome


def render(plan: Plan) -> str:
    """The plan document, indented, members in the documented order, ending with a newline."""
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=False) + "\n"


def render_run(outcomes: Sequence[Outcome]) -> str:
    """The run document of several stacks (``kind: run``): each stack's status, where it ran,
    its plan document or its error, and the run's summary; indented, ending with a newline."""
    return json.dumps(run_to_dict(outcomes), indent=2, sort_keys=False) + "\n"
