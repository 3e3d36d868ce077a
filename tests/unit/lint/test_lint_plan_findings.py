"""Findings in a plan are typed (`lint.finding.Finding`) and become JSON only at the edge:
the plan document holds `kmsplan lint --format json`'s form and reads back to the same plan."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from lint_helpers import ROOT

from kmsplan.lint.finding import Finding, Severity
from kmsplan.model import Location
from kmsplan.plan.serialize import PlanFormatError, plan_from_dict, plan_to_dict
from kmsplan.plan.types import Plan

SUPPRESSED = Finding(
    rule="KMS011",
    severity=Severity.WARNING,
    title="Deletion protection is off",
    key="orders",
    message="deletion protection is off for key 'orders'",
    path="keys.orders.deletion.protected",
    location=Location(file="kms/orders.yaml", line=12, column=20),
    suppressed=True,
    suppression_reason="being retired",
)
UNLOCATED = Finding(
    rule="KMS000",
    severity=Severity.WARNING,
    title="A lint rule failed on this key",
    key="orders",
    message="rule KMS005 failed",
    path="keys.orders",
)


def _plan(*findings: Finding) -> Plan:
    return Plan(stack="payments", account_id="111122223333", region="eu-west-1", findings=findings)


def _document(*findings: Finding) -> dict[str, Any]:
    return json.loads(json.dumps(plan_to_dict(_plan(*findings))))


def test_plan_document_holds_the_lint_json_form_and_reads_back_typed() -> None:
    document = _document(SUPPRESSED, UNLOCATED)
    assert document["findings"] == [
        {
            "rule": "KMS011",
            "severity": "warning",
            "title": "Deletion protection is off",
            "message": "deletion protection is off for key 'orders'",
            "key": "orders",
            "path": "keys.orders.deletion.protected",
            "location": {"file": "kms/orders.yaml", "line": 12, "column": 20},
            "suppressed": True,
            "suppression_reason": "being retired",
        },
        {
            "rule": "KMS000",
            "severity": "warning",
            "title": "A lint rule failed on this key",
            "message": "rule KMS005 failed",
            "key": "orders",
            "path": "keys.orders",
            "location": None,
            "suppressed": False,
        },
    ]
    plan = plan_from_dict(document)
    assert plan == _plan(SUPPRESSED, UNLOCATED)
    assert all(isinstance(f.severity, Severity) for f in plan.findings)


def test_finding_without_the_optional_members_reads_back() -> None:
    document = _document(UNLOCATED)
    del document["findings"][0]["path"]
    del document["findings"][0]["location"]
    (finding,) = plan_from_dict(document).findings
    assert (finding.path, finding.location) == ("", None)


@pytest.mark.parametrize(
    ("member", "value", "message"),
    [
        ("severity", "fatal", "findings[0].severity: expected one of error, warning, info"),
        ("suppressed", "no", "findings[0].suppressed: expected true or false"),
        (
            "location",
            {"file": "a.yaml", "line": "3", "column": 1},
            "findings[0].location.line: expected an integer",
        ),
        ("location", "a.yaml:3:1", "findings[0].location: expected an object"),
        ("suppression_reason", 7, "findings[0].suppression_reason: expected a string or null"),
        ("rule", None, "findings[0].rule: expected a string"),
    ],
)
def test_saved_plan_with_a_malformed_finding_is_refused(
    member: str, value: Any, message: str
) -> None:
    document = _document(SUPPRESSED)
    document["findings"][0][member] = value
    with pytest.raises(PlanFormatError) as raised:
        plan_from_dict(document)
    assert str(raised.value) == f"plan document: {message}"


def test_the_plan_types_do_not_load_the_lint_engine_or_any_rule() -> None:
    code = (
        "import sys, kmsplan.plan.types, kmsplan.plan.serialize; "
        "print(sorted(m for m in sys.modules if m.startswith('kmsplan.lint')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert loaded == "['kmsplan.lint', 'kmsplan.lint.finding']\n"
