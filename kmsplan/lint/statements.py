"""A key's policy as the policy rules read it: parsed statements with their document paths,
and the questions those rules ask of a statement (who is root, which conditions narrow)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kmsplan.errors import PolicyError
from kmsplan.lint.facts import ACCOUNT_VARIABLE, STAND_IN_ACCOUNT
from kmsplan.model import Key
from kmsplan.policy.document import KMS_ACTIONS, Condition, Statement, action_matches, parse_policy

_ROOT = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):root$")
_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):")

# Positive operators: a value list under them admits only the values listed. Negated operators
# ("StringNotEquals") and ...IfExists (true when the key is absent) do not narrow anything.
_NARROWING_OPERATORS = frozenset(
    {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike", "bool"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocatedStatement:
    statement: Statement
    path: str  # "keys.orders.policy.Statement[1]"

    @property
    def label(self) -> str:
        """How a message names the statement: `Statement[1] ("Sid")`."""
        where = self.path.rsplit(".policy.", 1)[-1]
        return f'{where} ("{self.statement.sid}")' if self.statement.sid else where

    def element(self, name: str) -> str:
        return f"{self.path}.{name}"


def policy_statements(
    key: Key, policy: Mapping[str, Any] | None = None, *, base: str | None = None
) -> list[LocatedStatement]:
    """The key's policy statements (or `policy`'s) with their document paths.

    A policy that does not parse yields nothing: the manifest validator reports it, and a rule
    cannot say anything reliable about a document KMS would reject.
    """
    document = key.policy if policy is None else policy
    if document is None:
        return []
    try:
        parsed = parse_policy(document)
    except PolicyError:
        return []
    prefix = base if base is not None else f"keys.{key.name}.policy"
    single = isinstance(document.get("Statement"), Mapping)
    return [
        LocatedStatement(
            statement=s,
            path=f"{prefix}.Statement" if single else f"{prefix}.Statement[{s.index}]",
        )
        for s in parsed.statements
    ]


def root_account(principal: str) -> str | None:
    """The account id of an account-root principal ARN, else None."""
    m = _ROOT.match(principal)
    return m.group(1) if m else None


def principal_account(principal: str) -> str | None:
    """The account an IAM/STS principal ARN belongs to, else None."""
    m = _ARN_ACCOUNT.match(principal)
    return m.group(1) if m else None


def is_own_root(principal: str, account_id: str | None) -> bool:
    """True for the key's own account root. Without a declared account, any account root
    counts: which account is "own" cannot be told from the manifest alone."""
    account = root_account(principal)
    if account is None:
        return False
    return account_id is None or account == account_id


def is_full_wildcard(pattern: str) -> bool:
    """A pattern that covers every KMS action ("*", "kms:*", "KMS:*")."""
    return ("*" in pattern or "?" in pattern) and all(
        action_matches(pattern, action) for action in KMS_ACTIONS
    )


def grants_everything(statement: Statement) -> bool:
    """`kms:*`/`*` (KMS002's finding) or NotAction (KMS007's): rules about particular actions
    leave such statements to those rules rather than report them a second time."""
    if statement.not_actions is not None:
        return True
    return statement.actions is not None and any(is_full_wildcard(a) for a in statement.actions)


def narrowing(condition: Condition, keys: Iterable[str]) -> bool:
    """Whether `condition` limits its key to fixed values, for one of `keys` (lower case)."""
    operator = condition.operator.lower()
    if operator.startswith("forallvalues:"):
        return False  # true when the request has no value for the key at all
    operator = operator.removeprefix("foranyvalue:")
    if operator not in _NARROWING_OPERATORS or condition.key.lower() not in set(keys):
        return False
    return bool(condition.values) and all(v.strip("*?") for v in condition.values)


def has_narrowing_condition(statement: Statement, keys: Iterable[str]) -> bool:
    wanted = frozenset(keys)
    return any(narrowing(c, wanted) for c in statement.conditions)


def limited_to_aws_services(statement: Statement) -> bool:
    """Whether grant management in `statement` is confined to AWS services acting for the
    caller: `kms:GrantIsForAWSResource` is true (the console's "key users" statement), or a
    `kms:ViaService` condition names the services (the AWS managed key pattern) — both hold
    only when an integrated service such as EBS or RDS sends the request."""
    return any(
        (
            c.key.lower() == "kms:grantisforawsresource"
            and c.operator.lower() in ("bool", "stringequals", "stringequalsignorecase")
            and {v.lower() for v in c.values} == {"true"}
        )
        or narrowing(c, ("kms:viaservice",))
        for c in statement.conditions
    )


def key_administrators(statements: Iterable[LocatedStatement]) -> frozenset[str]:
    """AWS principals that an unconditional Allow lets call kms:PutKeyPolicy: they can give
    themselves any other permission, so rules about narrower powers do not report them."""
    return frozenset(
        principal
        for located in statements
        if located.statement.principals is not None
        and not located.statement.is_conditional
        and located.statement.allows_action("kms:PutKeyPolicy")
        for principal in located.statement.principals.aws
        if principal != "*"
    )


def describe_principals(labels: Iterable[str]) -> str:
    """Principals for a message; the public principal reads as what it means."""
    return listing('every principal ("*")' if p == "*" else p for p in labels)


def describe_actions(statement: Statement, *, limit: int = 4) -> str:
    """The statement's actions for a message: "kms:Decrypt, kms:Encrypt" or "every action
    except kms:Decrypt"."""
    if statement.actions is not None:
        return _shorten(sorted(statement.actions), limit)
    if statement.not_actions is not None:
        return "every action except " + _shorten(sorted(statement.not_actions), limit)
    return "no action"


def listing(items: Iterable[str], *, limit: int = 3) -> str:
    """Sorted, shortened, and with the stand-in account shown as `${account_id}` again."""
    shown = sorted(item.replace(STAND_IN_ACCOUNT, ACCOUNT_VARIABLE) for item in items)
    return _shorten(shown, limit)


def _shorten(items: list[str], limit: int) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
