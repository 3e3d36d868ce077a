"""KMS017: a key's `lint.disable` names a rule kmsplan does not have."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    if not ctx.known_rules:
        return  # nothing to compare with: every entry would look unknown
    known = sorted(ctx.known_rules)
    for index, suppression in enumerate(key.lint_disable):
        if suppression.rule.upper() in ctx.known_rules:
            continue
        yield Violation(
            path=f"keys.{key.name}.lint.disable[{index}].rule",
            message=(
                f"lint.disable of key {key.name!r} names rule {suppression.rule!r}, which "
                f"kmsplan does not have (rules are {known[0]} to {known[-1]}): "
                "this entry suppresses nothing"
            ),
        )


RULE = Rule(
    id="KMS017",
    name="SuppressionOfUnknownRule",
    title="A lint suppression names a rule that does not exist",
    severity=Severity.WARNING,
    rationale=(
        "A suppression is a reviewed statement that a rule does not apply to a key. When its "
        "rule id is mistyped (or belongs to a newer kmsplan), it suppresses nothing, and the "
        "manifest claims a decision that kmsplan does not act on. The finding it was meant "
        "for is still reported. This is a warning rather than an error so that manifests "
        "written for a newer kmsplan, which may know more rules, still pass with an older one."
    ),
    fix=(
        "Correct the `rule:` of the entry to the id kmsplan prints for the finding (see "
        "docs/rules.md), or remove the entry."
    ),
    tags=("maintainability", "suppression"),
    detect=detect,
)
