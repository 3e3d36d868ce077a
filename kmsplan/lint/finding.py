"""What a lint rule reports: a Finding with its Severity, and the finding's JSON form.

Small and free of the rules on purpose: the plan holds findings (`Plan.findings`) and imports
this module without loading the lint engine or any rule.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from kmsplan.model import Location


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe; `--fail-on` compares ranks."""
        return _RANKS[self]

    @property
    def sarif_level(self) -> str:
        return _SARIF_LEVELS[self]


_RANKS = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}
_SARIF_LEVELS = {Severity.INFO: "note", Severity.WARNING: "warning", Severity.ERROR: "error"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    rule: str  # "KMS001"
    severity: Severity
    title: str
    key: str  # logical key name
    message: str
    path: str
    location: Location | None = None
    suppressed: bool = False
    suppression_reason: str | None = None

    @property
    def is_active(self) -> bool:
        """True when the finding counts towards the exit code (not suppressed)."""
        return not self.suppressed


def finding_to_dict(f: Finding) -> dict[str, Any]:
    """The JSON form of a finding, shared by `lint --format json` and the plan document."""
    return {
        "rule": f.rule,
        "severity": f.severity.value,
        "title": f.title,
        "message": f.message,
        "key": f.key,
        "path": f.path,
        "location": (
            {"file": f.location.file, "line": f.location.line, "column": f.location.column}
            if f.location
            else None
        ),
        "suppressed": f.suppressed,
        "suppression_reason": f.suppression_reason,
    }
