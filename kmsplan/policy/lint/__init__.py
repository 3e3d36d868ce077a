"""`kmsplan lint`: named rules over key policies, grants, rotation and deletion settings.

Public API: `lint_stack` runs every registered rule over a stack and applies the manifest's
suppressions; `finding_to_dict` is the JSON form shared with the plan document.
"""

from __future__ import annotations

from kmsplan.policy.lint.engine import fails, finding_to_dict, lint_key, lint_stack
from kmsplan.policy.lint.registry import RULE_IDS, RULES, rule_by_id
from kmsplan.policy.lint.rule import (
    Finding,
    LintConfig,
    LintContext,
    Reference,
    Rule,
    Severity,
    Violation,
)

__all__ = [
    "RULES",
    "RULE_IDS",
    "Finding",
    "LintConfig",
    "LintContext",
    "Reference",
    "Rule",
    "Severity",
    "Violation",
    "fails",
    "finding_to_dict",
    "lint_key",
    "lint_stack",
    "rule_by_id",
]
