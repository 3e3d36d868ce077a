"""The AWS principals a key policy names, for the plan-time principal checks.

KMS rejects a policy that names a principal that does not exist (MalformedPolicyDocument
"invalid principals"), so the planner checks same-account roles and users before apply. When a
role or user named in a live policy is deleted, IAM rewrites the principal to the entity's
unique id (``AROA…``/``AIDA…``): such a statement no longer matches anyone, and re-creating the
role does not restore it, so the plan flags it.
"""

from __future__ import annotations

import re

from kmsplan.policy.document import PolicyInput, parse_policy

# IAM unique id prefixes (IAM "Unique identifiers"): role, user, group, instance profile,
# managed policy, managed policy version, temporary credentials. The rest is upper-case
# letters and digits, 16 or more of them.
UNIQUE_ID_PREFIXES = ("AROA", "AIDA", "AGPA", "AIPA", "ANPA", "ANVA", "ASIA")
_UNIQUE_ID = re.compile(r"^(?:" + "|".join(UNIQUE_ID_PREFIXES) + r")[A-Z0-9]{16,}$")
_IAM_ENTITY = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):(?:role|user)/.+$"
)


def principals_in(policy: PolicyInput) -> set[str]:
    """Every AWS principal named in Principal or NotPrincipal, canonical (account ids as root
    ARNs). The public principal ``*`` is not a principal to check and is left out."""
    parsed = parse_policy(policy)
    named: set[str] = set()
    for statement in parsed.statements:
        for principals in (statement.principals, statement.not_principals):
            if principals is not None:
                named.update(p for p in principals.aws if p != "*")
    return named


def unique_id_principals(policy: PolicyInput) -> list[str]:
    """AWS principals that are IAM unique ids (``AROAEXAMPLEID1234567``) rather than ARNs:
    what IAM leaves in a policy after the role or user it named was deleted. Sorted."""
    return sorted(p for p in principals_in(policy) if is_unique_id(p))


def is_unique_id(value: str) -> bool:
    return _UNIQUE_ID.match(value) is not None


def same_account_iam_principals(policy: PolicyInput, account_id: str) -> set[str]:
    """Role and user ARNs in `account_id` that the policy names — the principals the planner
    can check for existence before KMS would reject the policy."""
    found: set[str] = set()
    for principal in principals_in(policy):
        match = _IAM_ENTITY.match(principal)
        if match and match.group("account") == account_id:
            found.add(principal)
    return found
