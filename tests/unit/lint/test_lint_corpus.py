"""Every rule over every example: examples/bad yields each planted finding (its keys are named
for their problems) and nothing else; realistic stacks yield no error or warning."""

from __future__ import annotations

from pathlib import Path

import pytest
from lint_helpers import EXAMPLES, FIXTURES, lint_file

from kmsplan.lint.engine import lint_stack
from kmsplan.lint.finding import Severity
from kmsplan.lint.registry import RULES
from kmsplan.manifest import load

# Key in examples/bad -> the rule planted there.
PLANTED = {
    "public-principal-without-condition": "KMS001",
    "kms-star-to-app-role": "KMS002",
    "key-user-can-administer": "KMS003",
    "no-administrator-left": "KMS004",
    "cross-account-without-condition": "KMS005",
    "create-grant-without-aws-resource-condition": "KMS006",
    "allow-with-not-principal": "KMS007",
    "rotation-disabled": "KMS008",
    "rotation-period-two-years": "KMS009",
    "deletion-window-seven-days": "KMS010",
    "deletion-protection-off": "KMS011",
    "grant-with-create-grant": "KMS012",
    "grant-without-constraint": "KMS013",
    "rsa-2048-for-encryption": "KMS014",
    "policy-near-size-limit": "KMS015",
    "suppression-of-unknown-rule": "KMS017",
    "service-principal-without-source-condition": "KMS018",
    "grant-to-another-account": "KMS019",
}
SUPPRESSED = {"retiring-key-unprotected-on-purpose": "KMS011"}


def test_examples_bad_yields_every_planted_finding_and_nothing_else() -> None:
    findings = lint_file(EXAMPLES / "bad")
    active = {(f.key, f.rule) for f in findings if not f.suppressed}
    suppressed = {(f.key, f.rule) for f in findings if f.suppressed}
    assert active == set(PLANTED.items())
    assert suppressed == set(SUPPRESSED.items())
    assert len(findings) == len(PLANTED) + len(SUPPRESSED)


def test_examples_bad_plants_every_rule_that_needs_no_live_state() -> None:
    static_rules = {rule.id for rule in RULES if not rule.live_only}
    assert set(PLANTED.values()) == static_rules


def _realistic_stacks() -> list[Path]:
    """Our realistic fixture, every example folder and every single-file example."""
    folders = sorted(
        p
        for p in EXAMPLES.iterdir()
        if p.is_dir()
        and p.name not in ("bad", "ci")
        and (any(p.glob("*.yaml")) or any(p.glob("*.yml")))
    )
    files = sorted(p for p in EXAMPLES.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    return [FIXTURES / "realistic", *folders, *files]


@pytest.mark.parametrize("stack", _realistic_stacks(), ids=lambda p: p.name)
def test_realistic_stack_has_no_error_or_warning(stack: Path) -> None:
    findings = lint_file(stack)
    problems = [
        f"{f.rule} {f.key}: {f.message}"
        for f in findings
        if f.is_active and f.severity in (Severity.ERROR, Severity.WARNING)
    ]
    assert problems == []


@pytest.mark.parametrize("declared_account", [True, False], ids=["account", "no-account"])
def test_key_policies_as_aws_writes_them_give_no_finding_at_all(
    declared_account: bool, tmp_path: Path
) -> None:
    """The default, console, CloudTrail, CloudWatch Logs and AWS-managed-key patterns and Deny
    guards: the false positives IAM linters are known for must not happen here, whether or not
    the manifest declares its account."""
    source = FIXTURES / "aws-patterns" / "stack.yaml"
    if declared_account:
        findings = lint_file(source)
    else:
        text = source.read_text(encoding="utf-8")
        assert 'account: "111122223333"\n' in text
        stack = tmp_path / "stack.yaml"
        stack.write_text(text.replace('account: "111122223333"\n', ""), encoding="utf-8")
        findings = lint_stack(load([str(stack)]))
    assert [f"{f.rule} {f.key}: {f.message}" for f in findings] == []
