"""The policy lockout check: will the new key policy still let us manage the key?

KMS refuses a CreateKey/PutKeyPolicy whose policy would not let the *calling* principal call
PutKeyPolicy again ("The new key policy will not allow you to update the key policy in the
future"). kmsplan checks the same thing before planning the call, for the account root and the
caller, so the plan says it is blocked and why instead of failing halfway through an apply
(and so that emulators without the check cannot let a lockout through).

The judgement is deliberately simple and explainable:

- a principal can manage the key when an **unconditional Allow** statement that applies to
  ``kms:PutKeyPolicy`` (``kms:PutKeyPolicy``, ``kms:Put*``, ``kms:*``, ``*``, or a NotAction
  that leaves it) names it, names ``*``, or names its account root — in a key policy the
  account root delegates to IAM, so IAM principals of that account are covered;
- an assumed-role session ``arn:aws:sts::ID:assumed-role/R/S`` is role ``R`` of account ``ID``
  (whatever the role's path);
- an **unconditional Deny** that applies to ``kms:PutKeyPolicy`` and to the principal (by
  name, ``*``, its account root, or a NotPrincipal that does not exclude it) overrides it;
- conditional statements are not counted either way: whether their conditions hold at the
  next PutKeyPolicy cannot be known now.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kmsplan.policy.document import Policy, PolicyInput, PrincipalSet, Statement, parse_policy

PUT_KEY_POLICY = "kms:PutKeyPolicy"

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>iam|sts)::(?P<account>\d{12}):(?P<rest>.+)$"
)
_ACCOUNT_ID = re.compile(r"^\d{12}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Principal:
    """A principal we want to keep able to manage the key."""

    arn: str  # as given (account ids as root ARNs)
    account: str | None
    role: str | None  # role name, for role ARNs and assumed-role sessions
    is_root: bool


def can_manage(policy: PolicyInput, principals: Sequence[str], *, account_id: str) -> bool:
    """True when `policy` lets at least one of `principals` — or the root of `account_id`,
    which is always considered — call kms:PutKeyPolicy (see the module docstring)."""
    parsed = parse_policy(policy)
    return any(
        _allowing(parsed, p) and not _denying(parsed, p)
        for p in _candidates(principals, account_id=account_id, partition=parsed.partition)
    )


def lockout_reason(
    policy: PolicyInput, principals: Sequence[str], *, account_id: str
) -> str | None:
    """None when `can_manage` holds; otherwise a human explanation: who would be locked out
    and which statements are the cause (the caller says how to unblock)."""
    parsed = parse_policy(policy)
    candidates = _candidates(principals, account_id=account_id, partition=parsed.partition)
    details: list[str] = []
    for candidate in candidates:
        allowing = _allowing(parsed, candidate)
        denying = _denying(parsed, candidate)
        if allowing and not denying:
            return None
        if allowing:
            details.extend(
                f"{_describe(s)} denies {PUT_KEY_POLICY} to {candidate.arn}" for s in denying
            )
    conditional = [
        s
        for s in parsed.statements
        if s.is_conditional
        and s.allows_action(PUT_KEY_POLICY)
        and any(_names(s.principals, s.not_principals, c) for c in candidates)
    ]
    details.extend(
        f"{_describe(s)} allows {PUT_KEY_POLICY} only under conditions, which cannot be "
        "known to hold at the next update"
        for s in conditional
    )
    if not details:
        details.append(
            f"no statement allows {PUT_KEY_POLICY} (or kms:*) to them without conditions"
        )
    who = ", ".join(sorted({c.arn for c in candidates}))
    return (
        f"the policy would lock out {who}: none of them could call {PUT_KEY_POLICY} "
        f"afterwards ({'; '.join(dict.fromkeys(details))})"
    )


# ----------------------------------------------------------------------------------------------


def _root(account_id: str, partition: str) -> str:
    return f"arn:{partition}:iam::{account_id}:root"


def _candidates(
    principals: Sequence[str], *, account_id: str, partition: str
) -> tuple[_Principal, ...]:
    out: dict[str, _Principal] = {}
    for value in (_root(account_id, partition), *principals):
        principal = _principal(value, partition=partition)
        out.setdefault(principal.arn, principal)
    return tuple(out.values())


def _principal(value: str, *, partition: str) -> _Principal:
    if _ACCOUNT_ID.match(value):
        value = _root(value, partition)
    match = _ARN.match(value)
    if match is None:
        return _Principal(arn=value, account=None, role=None, is_root=False)
    account, rest = match.group("account"), match.group("rest")
    role: str | None = None
    if match.group("service") == "sts" and rest.startswith("assumed-role/"):
        role = rest.split("/")[1]
    elif match.group("service") == "iam" and rest.startswith("role/"):
        role = rest.rsplit("/", 1)[-1]
    return _Principal(arn=value, account=account, role=role, is_root=rest == "root")


def _same(named: str, candidate: _Principal) -> bool:
    """`named` (a canonical policy principal) is `candidate` itself."""
    if named == candidate.arn:
        return True
    if candidate.role is None:
        return False
    other = _principal(named, partition="aws")
    return other.role == candidate.role and other.account == candidate.account


def _covers(named: str, candidate: _Principal) -> bool:
    """`named` in a Principal element applies to `candidate`: itself, or its account root."""
    if _same(named, candidate):
        return True
    other = _principal(named, partition="aws")
    return other.is_root and other.account is not None and other.account == candidate.account


def _names(
    principals: PrincipalSet | None, not_principals: PrincipalSet | None, candidate: _Principal
) -> bool:
    if principals is not None:
        return principals.is_public or any(_covers(p, candidate) for p in principals.aws)
    if not_principals is not None:
        # "Everyone except ...": the candidate is excluded only when named itself (IAM
        # documents that excluding an account root excludes only the root user).
        return not not_principals.is_public and not any(
            _same(p, candidate) for p in not_principals.aws
        )
    return False


def _effective(statement: Statement, candidate: _Principal) -> bool:
    return (
        not statement.is_conditional
        and statement.matches_action(PUT_KEY_POLICY)
        and statement.applies_to_any_resource()
        and _names(statement.principals, statement.not_principals, candidate)
    )


def _allowing(policy: Policy, candidate: _Principal) -> list[Statement]:
    return [s for s in policy.statements if s.effect == "Allow" and _effective(s, candidate)]


def _denying(policy: Policy, candidate: _Principal) -> list[Statement]:
    return [s for s in policy.statements if s.effect == "Deny" and _effective(s, candidate)]


def _describe(statement: Statement) -> str:
    label = f"Statement[{statement.index}]"
    return f'{label} (Sid "{statement.sid}")' if statement.sid else label
