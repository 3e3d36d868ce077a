"""`${...}` variables in key policies and grants.

`${stack}` and `${key}` are known when the manifests are loaded and substituted then;
`${account_id}` and `${region}` are known only once kmsplan talks to AWS, and are filled in by
`resolve_variables`. Any other `${name}` is an error, never left in place. IAM policy variables
(`${aws:username}`, `${aws:PrincipalTag/team}`, `${*}`, `${?}`, `${$}`) belong to the policy
language and are kept as written; they are not allowed in grants.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from kmsplan.manifest.source import DocPath
from kmsplan.model import Grant, GrantConstraints, Stack

VARIABLES: tuple[str, ...] = ("account_id", "region", "stack", "key")
LOAD_TIME_VARIABLES: tuple[str, ...] = ("stack", "key")
PLAN_TIME_VARIABLES: tuple[str, ...] = ("account_id", "region")

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
ALLOWED_TEXT = "${account_id}, ${region}, ${stack} or ${key}"


def is_iam_policy_variable(name: str) -> bool:
    return ":" in name or name in ("*", "?", "$")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VariableProblem:
    path: DocPath
    message: str
    allowed: str
    in_key: bool = False  # the problem is in the mapping key at `path`, not in its value


def substitute_text(
    text: str, values: Mapping[str, str], *, in_policy: bool
) -> tuple[str, list[str]]:
    """Replace the `${name}` references of `values` in `text`.

    Returns the new text and a list of problems (unknown variables, a `${` left open).
    Known variables missing from `values` (plan-time ones at load time) stay as written.
    """
    if "${" not in text:
        return text, []  # most strings: nothing to substitute, nothing to report
    names, unclosed = _references(text)
    if not unclosed and all(
        name not in values and (name in VARIABLES or (in_policy and is_iam_policy_variable(name)))
        for name in names
    ):
        return text, []  # only references kept as written (${account_id} at load time, ...)
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        if name in VARIABLES:
            return match.group(0)
        if is_iam_policy_variable(name):
            if in_policy:
                return match.group(0)
            problems.append(f"{match.group(0)} is an IAM policy variable, which grants do not "
                            "take")
            return match.group(0)
        problems.append(f"unknown variable {match.group(0)}")
        return match.group(0)

    out = _REFERENCE.sub(replace, text)
    if "${" in _REFERENCE.sub("", text):
        problems.append('"${" without a closing "}"')
    return out, problems


@functools.lru_cache(maxsize=4096)
def _references(text: str) -> tuple[tuple[str, ...], bool]:
    """The names `text` refers to, and whether a `${` in it is left open."""
    return tuple(_REFERENCE.findall(text)), "${" in _REFERENCE.sub("", text)


def substitute(value: Any, values: Mapping[str, str], *, path: DocPath, in_policy: bool,
               problems: list[VariableProblem]) -> Any:
    """Substitute in every string of a JSON-shaped value, mapping keys included."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        text, found = substitute_text(value, values, in_policy=in_policy)
        problems.extend(VariableProblem(path=path, message=m, allowed=ALLOWED_TEXT)
                        for m in found)
        return text
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            new_key = k
            if "${" in k:
                new_key, found = substitute_text(k, values, in_policy=in_policy)
                problems.extend(VariableProblem(path=(*path, k), message=f"in a field name: "
                                                f"{m}", allowed=ALLOWED_TEXT, in_key=True)
                                for m in found)
            if isinstance(v, str) and "${" not in v:
                out[new_key] = v
            else:
                out[new_key] = substitute(v, values, path=(*path, k), in_policy=in_policy,
                                          problems=problems)
        return out
    if isinstance(value, list):
        return [substitute(item, values, path=(*path, i), in_policy=in_policy,
                           problems=problems) for i, item in enumerate(value)]
    return value


def _plain(value: Any, values: Mapping[str, str]) -> Any:
    """Substitution without bookkeeping, for values that were validated at load time."""
    if isinstance(value, str):
        return substitute_text(value, values, in_policy=True)[0]
    if isinstance(value, dict):
        return {_plain(k, values): _plain(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(item, values) for item in value]
    return value


def _pairs(pairs: tuple[tuple[str, str], ...] | None,
           fill: Callable[[str], str]) -> tuple[tuple[str, str], ...] | None:
    if pairs is None:
        return None
    return tuple(sorted((fill(k), fill(v)) for k, v in pairs))


def _resolve_grant(grant: Grant, fill: Callable[[str], str]) -> Grant:
    constraints = grant.constraints
    if constraints is not None:
        constraints = GrantConstraints(
            encryption_context_subset=_pairs(constraints.encryption_context_subset, fill),
            encryption_context_equals=_pairs(constraints.encryption_context_equals, fill),
        )
    return dataclasses.replace(
        grant,
        grantee=fill(grant.grantee),
        retiring_principal=(None if grant.retiring_principal is None
                            else fill(grant.retiring_principal)),
        constraints=constraints,
    )


def resolve_variables(stack: Stack, *, account_id: str, region: str) -> Stack:
    """The stack with `${account_id}` and `${region}` filled in its policies and grants.

    Pure; call it once the target account and Region are known (at plan time).
    """
    if not _ACCOUNT_ID.match(account_id):
        raise ValueError(f"account_id must be 12 digits, got {account_id!r}")
    if not region:
        raise ValueError("region must not be empty")
    values = {"account_id": account_id, "region": region}

    def fill(text: str) -> str:
        return substitute_text(text, values, in_policy=False)[0]

    keys = tuple(
        dataclasses.replace(
            key,
            policy=None if key.policy is None else _plain(key.policy, values),
            grants=tuple(_resolve_grant(g, fill) for g in key.grants),
        )
        for key in stack.keys
    )
    return dataclasses.replace(stack, keys=keys)

