"""The rule reference in docs/rules.md is generated from the rules and must be current; the
registry is explicit, complete and consistent."""

from __future__ import annotations

import ast
import re

from lint_helpers import ROOT

from kmsplan.lint.docs import render_rules_markdown
from kmsplan.lint.registry import RULES

RULES_DOC = ROOT / "docs" / "rules.md"
RULE_MODULES = ROOT / "kmsplan" / "lint" / "rules"


def test_docs_rules_md_is_current() -> None:
    assert RULES_DOC.read_text(encoding="utf-8") == render_rules_markdown(), (
        "docs/rules.md is stale: run `python -m kmsplan.lint.docs > docs/rules.md`"
    )


def test_every_rule_is_documented_with_its_anchor() -> None:
    text = render_rules_markdown()
    for rule in RULES:
        assert f"\n## {rule.id}\n" in text
        assert f"[{rule.id}](#{rule.id.lower()})" in text
        assert rule.fix in text


def test_rule_ids_are_unique_sequential_and_names_unique() -> None:
    ids = [rule.id for rule in RULES]
    assert ids == [f"KMS{n:03d}" for n in range(1, len(RULES) + 1)]
    assert len({rule.name for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule.name), rule.name


def test_every_rule_has_complete_metadata() -> None:
    for rule in RULES:
        assert rule.title and rule.rationale and rule.fix and rule.tags, rule.id
        assert not rule.title.endswith("."), rule.id
        for reference in rule.references:
            assert reference.url.startswith("https://"), (rule.id, reference.label)


def test_every_rule_module_is_registered_exactly_once() -> None:
    modules = sorted(p.stem for p in RULE_MODULES.glob("*.py") if p.stem != "__init__")
    registered = sorted(rule.detect.__module__.rsplit(".", 1)[-1] for rule in RULES)
    assert registered == modules


def test_rules_do_not_import_the_registry_or_the_engine() -> None:
    # The registry imports every rule; a rule importing it back is an import cycle (KMS017
    # reads the known rule ids from its LintContext instead).
    for path in sorted(RULE_MODULES.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert not imported & {"kmsplan.lint.registry", "kmsplan.lint.engine"}, path.name
