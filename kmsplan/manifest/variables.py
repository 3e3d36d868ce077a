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
from kmsplan.model import Grant, GrantConstraints, Key, Stack

VARIABLES: tuple[str, ...] = ("account_id", "region", "stack", "key")

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
            problems.append(f"{match.group(0)} is an IAM policy variable, which grants do not take")
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


def substitute(
    value: Any,
    values: Mapping[str, str],
    *,
    path: DocPath,
    in_policy: bool,
    problems: list[VariableProblem],
) -> Any:
    """Substitute in every string of a JSON-shaped value, mapping keys included."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        text, found = substitute_text(value, values, in_policy=in_policy)
        problems.extend(VariableProblem(path=path, message=m, allowed=ALLOWED_TEXT) for m in found)
        return text
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            new_key = k
            if "${" in k:
                new_key, found = substitute_text(k, values, in_policy=in_policy)
                problems.extend(
                    VariableProblem(
                        path=(*path, k),
                        message=f"in a field name: {m}",
                        allowed=ALLOWED_TEXT,
                        in_key=True,
                    )
                    for m in found
                )
            if isinstance(v, str) and "${" not in v:
                out[new_key] = v
            else:
                out[new_key] = substitute(
                    v, values, path=(*path, k), in_policy=in_policy, problems=problems
                )
        return out
    if isinstance(value, list):
        return [
            substitute(item, values, path=(*path, i), in_policy=in_policy, problems=problems)
            for i, item in enumerate(value)
        ]
    return value


def _fill_json(value: Any, fill: Callable[[str], str]) -> Any:
    """`value` with `fill` applied to every string holding a `${`, mapping keys included.

    Copy on write: returns `value` itself when nothing in it changes and shares every
    unchanged part, so only the containers on the way to a variable are copied.
    """
    if isinstance(value, str):
        return fill(value) if "${" in value else value
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for k, v in value.items():
            if isinstance(k, str) and "${" in k:  # rare: rebuild, keeping the order
                return {
                    _fill_json(name, fill): _fill_json(item, fill) for name, item in value.items()
                }
            new = _fill_json(v, fill) if not isinstance(v, str) else fill(v) if "${" in v else v
            if new is not v:
                if out is None:
                    out = dict(value)
                out[k] = new
        return value if out is None else out
    if isinstance(value, list):
        items: list[Any] | None = None
        for i, v in enumerate(value):
            new = _fill_json(v, fill) if not isinstance(v, str) else fill(v) if "${" in v else v
            if new is not v:
                if items is None:
                    items = list(value)
                items[i] = new
        return value if items is None else items
    return value


def _pairs(
    pairs: tuple[tuple[str, str], ...] | None, fill: Callable[[str], str]
) -> tuple[tuple[str, str], ...] | None:
    """Encryption-context pairs filled and sorted; `pairs` itself when that changes nothing."""
    if pairs is None:
        return None
    filled = tuple(sorted((fill(k), fill(v)) for k, v in pairs))
    return pairs if filled == pairs else filled


def _resolve_grant(grant: Grant, fill: Callable[[str], str]) -> Grant:
    """`grant` with its variables filled; `grant` itself when it holds none."""
    constraints = grant.constraints
    if constraints is not None:
        subset = _pairs(constraints.encryption_context_subset, fill)
        equals = _pairs(constraints.encryption_context_equals, fill)
        if (
            subset is not constraints.encryption_context_subset
            or equals is not constraints.encryption_context_equals
        ):
            constraints = GrantConstraints(
                encryption_context_subset=subset, encryption_context_equals=equals
            )
    grantee = fill(grant.grantee)
    retiring = None if grant.retiring_principal is None else fill(grant.retiring_principal)
    if (
        grantee is grant.grantee
        and retiring is grant.retiring_principal
        and constraints is grant.constraints
    ):
        return grant
    return dataclasses.replace(
        grant, grantee=grantee, retiring_principal=retiring, constraints=constraints
    )


def resolve_variables(stack: Stack, *, account_id: str, region: str) -> Stack:
    """The stack with `${account_id}` and `${region}` filled in its policies and grants.

    Pure; call it once the target account and Region are known (at plan time). Keys, grants
    and policy parts without these variables are returned as they are, not copied.
    """
    if not _ACCOUNT_ID.match(account_id):
        raise ValueError(f"account_id must be 12 digits, got {account_id!r}")
    if not region:
        raise ValueError("region must not be empty")
    fill = _filler(account_id, region)
    # A replica's ${region} is its own Region.
    fillers = {r.region: _filler(account_id, r.region) for k in stack.keys for r in k.replicas}
    keys = tuple(_resolve_key(key, fill, fillers) for key in stack.keys)
    if all(new is old for new, old in zip(keys, stack.keys, strict=True)):
        return stack
    return dataclasses.replace(stack, keys=keys)


def _filler(account_id: str, region: str) -> Callable[[str], str]:
    values = {"account_id": account_id, "region": region}
    # A stack repeats the same few strings (role ARNs, the account root) in every key:
    # substitute each distinct one once. The substituted text depends on the text alone
    # (in_policy only changes which problems are reported, and those were reported at load).
    filled: dict[str, str] = {}

    def fill(text: str) -> str:
        if "${" not in text:
            return text
        result = filled.get(text)
        if result is None:
            result = filled[text] = substitute_text(text, values, in_policy=True)[0]
        # Unchanged text comes back as the caller's own object, so that "nothing changed"
        # can be told by identity all the way up to the key.
        return text if result == text else result

    return fill


def _resolve_key(
    key: Key, fill: Callable[[str], str], fillers: Mapping[str, Callable[[str], str]]
) -> Key:
    """`key` with its variables filled; `key` itself when its policy, grants and replicas'
    policies hold none."""
    policy = None if key.policy is None else _fill_json(key.policy, fill)
    grants = tuple(_resolve_grant(grant, fill) for grant in key.grants)
    replicas = tuple(
        r
        if r.policy is None
        else dataclasses.replace(r, policy=_fill_json(r.policy, fillers[r.region]))
        for r in key.replicas
    )
    unchanged_grants = all(new is old for new, old in zip(grants, key.grants, strict=True))
    unchanged_replicas = all(
        new.policy is old.policy for new, old in zip(replicas, key.replicas, strict=True)
    )
    if policy is key.policy and unchanged_grants and unchanged_replicas:
        return key
    if unchanged_replicas:
        replicas = key.replicas
    return dataclasses.replace(key, policy=policy, grants=grants, replicas=replicas)
