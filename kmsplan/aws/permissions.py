"""The least-privilege IAM policies of the roles that run `kmsplan plan` and `kmsplan apply`,
derived from the table of operations (`kmsplan.aws.operations`). Pure: stacks in, a policy
document out.

- plan: the reads only;
- apply: the reads and the writes, each write scoped to the keys of the given stacks (or, with
  no stacks given, to keys that belong to some kmsplan stack): an apply role for stack A
  cannot change, tag, alias, grant on or delete stack B's keys.

How each write is scoped (the KMS service authorization reference):

- on an existing key: ``aws:ResourceTag/kmsplan:stack`` is the stack;
- CreateKey (no resource): ``aws:RequestTag/kmsplan:stack`` is the stack, and the Region is
  pinned with ``aws:RequestedRegion`` where the stacks declare one;
- TagResource also on a key without a ``kmsplan:stack`` tag when the request sets it to the
  stack: the ownership tags of a new key (CreateKey's tags need kms:TagResource), never a
  retagging of another stack's key;
- aliases: the alias resource takes no tag condition, so alias operations are allowed on the
  Region's aliases, while the key side of each (the key an alias names or is moved to or from)
  is scoped like any key;
- the stack lock (apply): for each stack whose manifests name a ``lock:``, its S3 object
  (``PREFIX/ACCOUNT/REGION/STACK.lock``) or its DynamoDB table, nothing else. `plan --out`
  takes the lock too: a role that saves plans of a locked stack needs the same statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kmsplan import kmsspec
from kmsplan.aws.lock import LockUrl
from kmsplan.aws.operations import OPERATIONS, Access, Operation, Resource
from kmsplan.model import TAG_STACK, Stack

KINDS = ("plan", "apply")
DEFAULT_PARTITION = "aws"
# The size limit of a role's inline policies, whitespace not counted.
INLINE_POLICY_LIMIT = 10_240


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Where stacks run, and which stacks: None is any kmsplan stack."""

    partition: str
    account: str  # "*": not declared
    region: str  # "*": not declared
    stacks: tuple[str, ...] | None

    def arn(self, resource: str) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:{resource}"


def operations_for(kind: str) -> tuple[Operation, ...]:
    """The operations a role running `kind` needs."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    wanted = (Access.READ,) if kind == "plan" else (Access.READ, Access.WRITE)
    return tuple(op for op in OPERATIONS if op.access in wanted)


def scopes(stacks: Sequence[Stack]) -> tuple[Scope, ...]:
    """The stacks grouped by where they run; no stacks: one scope, anywhere, any stack."""
    if not stacks:
        return (Scope(partition=DEFAULT_PARTITION, account="*", region="*", stacks=None),)
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for stack in stacks:
        partition = stack.role.arn.split(":")[1] if stack.role else DEFAULT_PARTITION
        account = stack.account or (stack.role.account if stack.role else "*")
        grouped.setdefault((partition, account, stack.region or "*"), []).append(stack.name)
    return tuple(
        Scope(partition=p, account=a, region=r, stacks=tuple(sorted(set(names))))
        for (p, a, r), names in sorted(grouped.items())
    )


def policy(kind: str, stacks: Sequence[Stack] = ()) -> dict[str, Any]:
    """The IAM policy document for the role that runs `kind` ("plan" or "apply") for
    `stacks` (none: any stack)."""
    ops = operations_for(kind)
    where = scopes(stacks)
    statements: list[dict[str, Any]] = [
        _statement("Discover", _actions(ops, Resource.ANY), ["*"]),
        _statement(
            "ReadKeys", _actions(ops, Resource.KEY, Access.READ), [s.arn("key/*") for s in where]
        ),
        _statement(
            "CheckPrincipals",
            _actions(ops, Resource.PRINCIPAL),
            sorted(
                {
                    f"arn:{s.partition}:iam::{s.account}:{kind_}/*"
                    for s in where
                    for kind_ in ("role", "user")
                }
            ),
        ),
    ]
    writes = [op for op in ops if op.access is Access.WRITE]
    for index, scope in enumerate(where, start=1):
        suffix = "" if len(where) == 1 else str(index)
        statements.extend(_write_statements(writes, scope, suffix))
    if kind == "apply":
        statements.extend(_lock_statements(stacks))
    return {
        "Version": kmsspec.POLICY_VERSION_CURRENT,
        "Statement": [s for s in statements if s["Action"]],
    }


def _write_statements(
    writes: Sequence[Operation], scope: Scope, suffix: str
) -> list[dict[str, Any]]:
    key_writes = _actions(writes, Resource.KEY) + _actions(writes, Resource.ALIAS)
    tagging = [a for a in _actions(writes, Resource.KEY) if a == "kms:TagResource"]
    created = _actions(writes, Resource.NEW_KEY)
    create_condition = _request_tag(scope)
    if scope.region != "*":
        create_condition.setdefault("StringEquals", {})["aws:RequestedRegion"] = scope.region
    new_key_tags = _request_tag(scope)
    new_key_tags.setdefault("Null", {})[f"aws:ResourceTag/{TAG_STACK}"] = "true"
    return [
        _statement(
            f"WriteStackKeys{suffix}",
            sorted(key_writes),
            [scope.arn("key/*")],
            _resource_tag(scope),
        ),
        _statement(f"CreateStackKeys{suffix}", created, ["*"], create_condition),
        _statement(f"TagNewStackKeys{suffix}", tagging, [scope.arn("key/*")], new_key_tags),
        _statement(f"Aliases{suffix}", _actions(writes, Resource.ALIAS), [scope.arn("alias/*")]),
    ]


def _lock_statements(stacks: Sequence[Stack]) -> list[dict[str, Any]]:
    """The stack locks the stacks name: their S3 objects, their DynamoDB tables."""
    objects: set[str] = set()
    tables: set[str] = set()
    for stack in stacks:
        if stack.lock is None:
            continue
        url = LockUrl.parse(stack.lock)
        partition = stack.role.arn.split(":")[1] if stack.role else DEFAULT_PARTITION
        account = stack.account or (stack.role.account if stack.role else "*")
        region = stack.region or "*"
        if url.scheme == "s3":
            parts = [p for p in (url.prefix, account, region) if p]
            objects.add(f"arn:{partition}:s3:::{url.container}/{'/'.join(parts)}/{stack.name}.lock")
        else:
            tables.add(f"arn:{partition}:dynamodb:{region}:{account}:table/{url.container}")
    lock_ops = [op for op in OPERATIONS if op.access is Access.LOCK]
    statements = []
    if objects:
        actions = sorted(op.iam_action for op in lock_ops if op.service == "s3")
        statements.append(_statement("StackLockObjects", actions, sorted(objects)))
    if tables:
        actions = sorted(op.iam_action for op in lock_ops if op.service == "dynamodb")
        statements.append(_statement("StackLockTables", actions, sorted(tables)))
    return statements


def _resource_tag(scope: Scope) -> dict[str, Any]:
    if scope.stacks is None:
        return {"Null": {f"aws:ResourceTag/{TAG_STACK}": "false"}}
    return {"StringEquals": {f"aws:ResourceTag/{TAG_STACK}": _one_or_list(scope.stacks)}}


def _request_tag(scope: Scope) -> dict[str, Any]:
    if scope.stacks is None:
        return {"Null": {f"aws:RequestTag/{TAG_STACK}": "false"}}
    return {"StringEquals": {f"aws:RequestTag/{TAG_STACK}": _one_or_list(scope.stacks)}}


def _one_or_list(values: tuple[str, ...]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def _actions(
    ops: Iterable[Operation], resource: Resource, access: Access | None = None
) -> list[str]:
    return sorted(
        op.iam_action
        for op in ops
        if op.resource is resource and (access is None or op.access is access)
    )


def _statement(
    sid: str,
    actions: list[str],
    resources: list[str],
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": resources[0] if len(resources) == 1 else resources,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def allowed_actions(document: dict[str, Any]) -> set[str]:
    """Every action a policy document allows (for tests and checks)."""
    found: set[str] = set()
    for statement in document["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found
