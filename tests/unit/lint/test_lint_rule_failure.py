"""A lint rule that raises never aborts a run: `lint` and `plan` go on, and the failure is a
KMS000 warning that names the rule and the exception (cfn-lint's E0002)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import jsonschema
import pytest
from lint_helpers import ROOT, SARIF_SCHEMA

from kmsplan.cli import main
from kmsplan.lint import registry
from kmsplan.lint.engine import fails, lint_stack
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.manifest import load
from kmsplan.model import Key, Location

REGION = "us-east-1"
MANIFEST = """\
version: 1
stack: payments
keys:
  orders:
    rotation: {enabled: true}
  refunds:
    rotation: {enabled: false}
"""
FAILED_MESSAGE = (
    "rule KMS999 (AlwaysFailsOnOrders) failed on key 'orders' with KeyError: 'Statement'; "
    "its findings for this key are missing (a kmsplan bug: please report it)"
)


def _fails_on_orders(key: Key, ctx: LintContext) -> Iterator[Violation]:
    if key.name == "orders":
        raise KeyError("Statement")
    yield from ()


FAILING_RULE = Rule(
    id="KMS999",
    name="AlwaysFailsOnOrders",
    title="A rule with a bug",
    severity=Severity.ERROR,
    rationale="r",
    fix="f",
    tags=("test",),
    detect=_fails_on_orders,
)


@pytest.fixture
def failing_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registers FAILING_RULE first, before the real rules, for this test only."""
    monkeypatch.setattr(registry, "RULES", (FAILING_RULE, *registry.RULES))


def test_rule_that_raises_becomes_a_warning_and_the_other_rules_still_run(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "stack.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    findings = lint_stack(load([str(manifest)]), rules=(FAILING_RULE, *registry.RULES))
    assert [(f.rule, f.key, f.severity, f.message) for f in findings] == [
        ("KMS000", "orders", Severity.WARNING, FAILED_MESSAGE),
        (
            "KMS008",
            "refunds",
            Severity.WARNING,
            "automatic rotation is disabled on SYMMETRIC_DEFAULT key 'refunds', which KMS can "
            "rotate",
        ),
    ]
    failed = findings[0]
    assert (failed.path, failed.location, failed.is_active) == (
        "keys.orders",
        Location(file=str(manifest), line=4, column=3),
        True,
    )
    assert not fails(findings, Severity.ERROR) and fails(findings, Severity.WARNING)


def test_lint_reports_the_failed_rule_and_keeps_its_exit_code(
    failing_rule: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = tmp_path / "stack.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["lint", "stack.yaml"]) == 0  # a warning does not fail --fail-on error
    out = capsys.readouterr().out
    assert f"stack.yaml:4:3: warning: KMS000 [orders] {FAILED_MESSAGE}\n" in out
    assert "warning: KMS008 [refunds]" in out
    assert out.endswith("2 findings: 0 errors, 2 warnings, 0 info.\n")

    assert main(["lint", "--fail-on", "warning", "stack.yaml"]) == 1
    capsys.readouterr()


def test_sarif_describes_the_failed_rule_only_when_one_failed(
    failing_rule: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "stack.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    assert main(["lint", "--format", "sarif", str(manifest)]) == 0
    document = json.loads(capsys.readouterr().out)
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema).validate(document)
    run = document["runs"][0]
    ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert ids[-1] == "KMS000" and ids.count("KMS000") == 1
    failed = next(r for r in run["results"] if r["ruleId"] == "KMS000")
    assert failed["ruleIndex"] == len(ids) - 1
    assert (failed["level"], failed["message"]["text"]) == ("warning", FAILED_MESSAGE)

    assert main(["lint", "--format", "sarif", str(ROOT / "tests/fixtures/lint/KMS001/bad.yaml")])
    clean = json.loads(capsys.readouterr().out)
    assert "KMS000" not in [rule["id"] for rule in clean["runs"][0]["tool"]["driver"]["rules"]]


def test_disabling_the_failed_rule_for_the_key_suppresses_its_failure(
    failing_rule: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "stack.yaml"
    manifest.write_text(
        MANIFEST.replace(
            "  orders:\n",
            "  orders:\n    lint:\n      disable:\n        - {rule: KMS999, reason: known bug}\n",
        ),
        encoding="utf-8",
    )
    assert main(["lint", "--fail-on", "warning", "--format", "json", str(manifest)]) == 1
    document = json.loads(capsys.readouterr().out)
    failed = [f for f in document["findings"] if f["rule"] == "KMS000"]
    assert [(f["suppressed"], f["suppression_reason"]) for f in failed] == [(True, "known bug")]
    assert document["summary"] == {"error": 0, "warning": 1, "info": 0, "suppressed": 1}


@pytest.mark.integration
def test_plan_goes_on_and_carries_the_failed_rule_as_a_finding(
    failing_rule: None, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "stack.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    code = main(
        [
            "plan",
            str(manifest),
            "--format",
            "json",
            "--detailed-exitcode",
            "--endpoint-url",
            endpoint,
            "--region",
            REGION,
        ]
    )
    captured = capsys.readouterr()
    assert code == 2, captured.err
    document = json.loads(captured.out)
    assert [c["address"] for c in document["changes"]] == ["key.orders", "key.refunds"]
    failed = [f for f in document["findings"] if f["rule"] == "KMS000"]
    assert [(f["severity"], f["key"], f["message"], f["suppressed"]) for f in failed] == [
        ("warning", "orders", FAILED_MESSAGE, False)
    ]
    kms = boto3.client("kms", endpoint_url=endpoint, region_name=REGION)
    assert kms.list_keys()["Keys"] == []  # plan never writes
