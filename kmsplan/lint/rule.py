"""What a lint rule is and what it reports.

A rule is data plus one small check: its id, title, severity, rationale, fix and the public
controls it corresponds to are read by the docs generator and the SARIF renderer, so the rule
reference and the code-scanning help text cannot drift from the check itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kmsplan import kmsspec
from kmsplan.lint.finding import Finding, Severity
from kmsplan.model import Key, Location, Stack


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A public control this rule corresponds to (Security Hub, Control Tower, checkov...)."""

    label: str  # "AWS Security Hub KMS.5"
    url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LintConfig:
    """The thresholds rules read; the defaults are the documented ones."""

    max_rotation_period_days: int = kmsspec.ROTATION_PERIOD_DEFAULT_DAYS
    min_deletion_window_days: int = kmsspec.DELETION_WINDOW_DEFAULT_DAYS
    # KMS rejects policies over 32,768 bytes; warn while there is still room to restructure.
    policy_size_warning_bytes: int = 28 * 1024
    policy_size_limit_bytes: int = kmsspec.POLICY_MAX_BYTES


@dataclass(frozen=True, slots=True, kw_only=True)
class LintContext:
    """What a rule may look at besides the key itself."""

    stack: Stack
    config: LintConfig = LintConfig()
    # The key's own account: the manifest's `account:` or the live account; None when neither
    # is known (then `${account_id}` in a policy stands for an unknown own account).
    account_id: str | None = None
    # The key's policy as KMS holds it now (only with `kmsplan lint --live`); None otherwise.
    live_policy: Mapping[str, Any] | None = field(default=None, hash=False)
    # The ids of the rules kmsplan has (the registry's), for rules about suppressions: passed
    # in rather than imported, since the registry imports every rule.
    known_rules: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """What a check found, before the engine attaches the rule's metadata and a location."""

    path: str  # document path: "keys.orders.policy.Statement[1].Principal"
    message: str
    # Where it is, when the check knows better than the source map (a grant's own location).
    location: Location | None = None


Detector = Callable[[Key, LintContext], Iterable[Violation]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    id: str  # stable: "KMS001"; never reused for another meaning
    name: str  # PascalCase, for SARIF's rule name: "PublicPrincipalWithoutCondition"
    title: str  # one line, says what is wrong
    severity: Severity
    rationale: str  # why it matters
    fix: str  # what to do instead
    references: tuple[Reference, ...] = ()
    tags: tuple[str, ...] = ()
    # Rules that only make sense against live KMS (they read LintContext.live_policy).
    live_only: bool = False
    detect: Detector = field(compare=False, repr=False)

    def check(self, key: Key, ctx: LintContext) -> list[Finding]:
        """Run the rule on one key: every violation becomes a located, unsuppressed Finding."""
        return [
            Finding(
                rule=self.id,
                severity=self.severity,
                title=self.title,
                key=key.name,
                message=v.message,
                path=v.path,
                location=v.location or locate(key, v.path),
            )
            for v in self.detect(key, ctx)
        ]


def locate(key: Key, path: str) -> Location | None:
    """The most precise known location of `path` in the key's manifest.

    Walks up from the path to its ancestors ("...Statement[1].Principal" → "...Statement[1]"
    → "...policy" → "keys.orders"); a setting inherited from `defaults:` is located there
    when the key's own block does not mention it.
    """
    source_map = key.source_map
    key_prefix = f"keys.{key.name}"
    candidate = path
    while candidate:
        if candidate in source_map:
            return source_map[candidate]
        if candidate.startswith(key_prefix + ".") and candidate != key_prefix:
            inherited = "defaults." + candidate[len(key_prefix) + 1 :]
            if inherited in source_map:
                return source_map[inherited]
        candidate = parent_path(candidate)
    return key.location


_LAST_PART = re.compile(r'(\.[^.\[\]]+|\[[0-9]+\]|\["(?:[^"\\]|\\.)*"\])$')


def parent_path(path: str) -> str:
    """`a.b[1].c` → `a.b[1]` → `a.b` → `a` → "" (quoted parts such as `["aws:x"]` are one)."""
    match = _LAST_PART.search(path)
    if match is None or match.start() == 0:
        return ""
    return path[: match.start()]
