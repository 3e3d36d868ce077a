"""Run the registered rules over a stack and apply the manifest's suppressions."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kmsplan.lint import registry
from kmsplan.lint.facts import ACCOUNT_VARIABLE, STAND_IN_ACCOUNT
from kmsplan.lint.finding import Finding, Severity
from kmsplan.lint.rule import LintConfig, LintContext, Rule
from kmsplan.model import Key, Stack

DEFAULT_CONFIG = LintConfig()


def lint_stack(
    stack: Stack,
    *,
    live_policies: Mapping[str, Mapping[str, Any]] | None = None,
    config: LintConfig = DEFAULT_CONFIG,
    rules: Sequence[Rule] | None = None,
    keys: Iterable[str] | None = None,
    account_id: str | None = None,
) -> list[Finding]:
    """Every finding for the stack's keys (or only `keys`), suppressed ones included.

    `account_id` is the account the keys live in, when known from AWS (else the manifest's
    `account:`). `live_policies` maps a key's logical name to the policy KMS holds for it
    now; rules marked `live_only` run only for keys present there. `rules` defaults to the
    registry's, read at call time. Findings come out in manifest order (file, line, column),
    then by rule id; unlocated ones last.
    """
    rules = registry.RULES if rules is None else rules
    wanted = set(keys) if keys is not None else None
    account = account_id or stack.account
    base = LintContext(
        stack=stack,
        config=config,
        account_id=account,
        known_rules=registry.RULE_IDS | {rule.id for rule in rules},
    )
    findings: list[Finding] = []
    for key in stack.keys:
        if wanted is not None and key.name not in wanted:
            continue
        live_policy = live_policies.get(key.name) if live_policies is not None else None
        ctx = dataclasses.replace(base, live_policy=live_policy)
        findings.extend(lint_key(with_account(key, account), ctx, rules=rules))
    findings.sort(key=_order)
    return findings


def with_account(key: Key, account_id: str | None) -> Key:
    """The key with `${account_id}` in its policy filled in, so rules see real ARNs.

    Manifests are linted without AWS, so the account may be unknown: then a stand-in account
    takes its place, which rules treat as the own account and messages show as
    `${account_id}` again.
    """
    if key.policy is None:
        return key
    filled = _fill(key.policy, account_id or STAND_IN_ACCOUNT)
    return dataclasses.replace(key, policy=filled) if filled != key.policy else key


def _fill(value: Any, account: str) -> Any:
    if isinstance(value, str):
        return value.replace(ACCOUNT_VARIABLE, account)
    if isinstance(value, Mapping):
        return {k: _fill(v, account) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, account) for v in value]
    return value


def lint_key(key: Key, ctx: LintContext, *, rules: Sequence[Rule]) -> list[Finding]:
    """One key's findings, with the key's `lint.disable` entries applied. A rule that raises
    gives one KMS000 warning naming it instead of its findings: the other rules go on."""
    reasons = {s.rule.upper(): s.reason for s in key.lint_disable}
    findings: list[Finding] = []
    for rule in rules:
        if rule.live_only and ctx.live_policy is None:
            continue
        try:
            found = rule.check(key, ctx)
        except Exception as exc:
            found = [rule_failed(rule, key, exc)]
        for finding in found:
            # A failed rule's KMS000 is suppressed with the rule: the key's owner has said
            # that the rule does not apply.
            reason = reasons.get(rule.id)
            if reason is not None:
                finding = dataclasses.replace(finding, suppressed=True, suppression_reason=reason)
            findings.append(finding)
    findings.sort(key=_order)
    return findings


def rule_failed(rule: Rule, key: Key, exc: Exception) -> Finding:
    """The KMS000 finding that stands for `rule`'s findings on `key` when it raised `exc`."""
    failed = registry.RULE_FAILED
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Finding(
        rule=failed.id,
        severity=failed.severity,
        title=failed.title,
        key=key.name,
        message=(
            f"rule {rule.id} ({rule.name}) failed on key {key.name!r} with {detail}; its "
            "findings for this key are missing (a kmsplan bug: please report it)"
        ),
        path=f"keys.{key.name}",
        location=key.location,
    )


def _order(f: Finding) -> tuple[bool, str, int, int, str, str, str]:
    if f.location is None:
        return (True, "", 0, 0, f.key, f.rule, f.path)
    loc = f.location
    return (False, loc.file, loc.line, loc.column, f.key, f.rule, f.path)


def fails(findings: Iterable[Finding], threshold: Severity | None) -> bool:
    """True when an unsuppressed finding at or above `threshold` remains (None: never)."""
    if threshold is None:
        return False
    return any(f.is_active and f.severity.rank >= threshold.rank for f in findings)
