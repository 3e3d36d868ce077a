"""Lint findings as SARIF 2.1.0, the format GitHub code scanning reads.

The rule metadata (`tool.driver.rules`) comes from the same Rule objects the docs are
generated from; results point at the offending statement or field through the manifest's
source map, with paths relative to the working directory (the repository root in CI).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from kmsplan import __version__
from kmsplan.lint.finding import Finding, Severity
from kmsplan.lint.registry import RULE_FAILED, RULES
from kmsplan.lint.rule import Rule
from kmsplan.render.findings import relative_file

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
SOURCE_ROOT = "%SRCROOT%"

# GitHub code scanning ranks security alerts by this property (CVSS-like, 0.0-10.0).
_SECURITY_SEVERITY = {Severity.ERROR: "8.0", Severity.WARNING: "5.0", Severity.INFO: "2.0"}


def rule_help_text(rule: Rule) -> str:
    lines = [rule.rationale, "", f"Fix: {rule.fix}"]
    if rule.references:
        lines += ["", "Corresponds to: " + "; ".join(r.label for r in rule.references)]
    return "\n".join(lines)


def rule_help_markdown(rule: Rule) -> str:
    lines = [f"**{rule.id}: {rule.title}**", "", rule.rationale, "", f"**Fix:** {rule.fix}"]
    if rule.references:
        lines += ["", "**Corresponds to:**", ""]
        lines += [f"- [{r.label}]({r.url})" if r.url else f"- {r.label}" for r in rule.references]
    return "\n".join(lines)


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.rationale},
        "help": {"text": rule_help_text(rule), "markdown": rule_help_markdown(rule)},
        "defaultConfiguration": {"level": rule.severity.sarif_level},
        "properties": {
            "tags": list(rule.tags),
            "precision": "high",
            "security-severity": _SECURITY_SEVERITY[rule.severity],
        },
    }


def _fingerprint(f: Finding) -> str:
    # Stable when lines move: the rule, the key and the document path identify the problem.
    return hashlib.sha256(f"{f.rule}|{f.key}|{f.path}".encode()).hexdigest()


def _result(f: Finding, rule_index: int, base_dir: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": f.severity.sarif_level,
        "message": {"text": f.message},
        "partialFingerprints": {"kmsplanFinding/v1": _fingerprint(f)},
    }
    location: dict[str, Any] = {
        "logicalLocations": [{"fullyQualifiedName": f.path, "kind": "member"}],
    }
    if f.location is not None:
        location["physicalLocation"] = {
            "artifactLocation": {
                "uri": relative_file(f.location.file, base_dir),
                "uriBaseId": SOURCE_ROOT,
            },
            "region": {
                "startLine": max(f.location.line, 1),
                "startColumn": max(f.location.column, 1),
            },
        }
    result["locations"] = [location]
    if f.suppressed:
        result["suppressions"] = [{"kind": "inSource", "justification": f.suppression_reason or ""}]
    return result


def sarif_document(
    findings: Sequence[Finding],
    *,
    rules: Sequence[Rule] = RULES,
    base_dir: str | None = None,
    failures: Sequence[str] = (),
) -> dict[str, Any]:
    """One run with every finding. `failures` (one message per stack that could not be
    linted) make the run's invocation unsuccessful, with one error notification each: its
    results are then incomplete."""
    if any(f.rule == RULE_FAILED.id for f in findings) and RULE_FAILED not in rules:
        rules = (*rules, RULE_FAILED)  # described only in runs where a rule failed
    index = {rule.id: i for i, rule in enumerate(rules)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "kmsplan",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [_rule_descriptor(rule) for rule in rules],
            }
        },
    }
    if failures:
        run["invocations"] = [
            {
                "executionSuccessful": False,
                "toolExecutionNotifications": [
                    {"level": "error", "message": {"text": text}} for text in failures
                ],
            }
        ]
    run["columnKind"] = "unicodeCodePoints"
    run["results"] = [_result(f, index[f.rule], base_dir) for f in findings]
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def render_sarif(
    findings: Sequence[Finding],
    *,
    rules: Sequence[Rule] = RULES,
    base_dir: str | None = None,
    failures: Sequence[str] = (),
) -> str:
    document = sarif_document(findings, rules=rules, base_dir=base_dir, failures=failures)
    return json.dumps(document, indent=2) + "\n"
