"""Small hand-built plans for applier tests (the differ is tested elsewhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kmsplan.aws.writer import KmsWriter, Writer
from kmsplan.model import TAG_KEY, TAG_PROTECTION, TAG_STACK, Placement
from kmsplan.plan.types import Action, ApiCall, Change, GateOptions, Plan, Resource, ref

STACK = "payments"
ACCOUNT = "123456789012"
REGION = "us-east-1"
GRANTEE = f"arn:aws:iam::{ACCOUNT}:role/orders-lambda"


def identity_tags(name: str, *, protected: bool = True, stack: str = STACK) -> list[dict[str, str]]:
    return [
        {"TagKey": TAG_KEY, "TagValue": name},
        {"TagKey": TAG_PROTECTION, "TagValue": "true" if protected else "false"},
        {"TagKey": TAG_STACK, "TagValue": stack},
    ]


def writers(kms: Any) -> Callable[[Placement], Writer]:
    """Every placement's writer: one over `kms` (a boto3 KMS client: moto, a Stubber, a
    scripted one), as the CLI builds it over the run's client."""
    writer = KmsWriter(kms)
    return lambda _placement: writer


def call(operation: str, **params: Any) -> ApiCall:
    return ApiCall(operation=operation, params=params)


def create_key(name: str, *extra: ApiCall, protected: bool = True, **params: Any) -> Change:
    return Change(
        address=f"key.{name}",
        resource=Resource.KEY,
        action=Action.CREATE,
        key=name,
        calls=(
            call(
                "CreateKey",
                Description=f"{name} key",
                Tags=identity_tags(name, protected=protected),
                **params,
            ),
            *extra,
        ),
    )


def change(
    address: str,
    resource: Resource,
    action: Action,
    key: str,
    *calls: ApiCall,
    depends_on: tuple[str, ...] = (),
) -> Change:
    return Change(
        address=address,
        resource=resource,
        action=action,
        key=key,
        calls=calls,
        depends_on=depends_on,
    )


def alias_create(alias: str, key: str, target: Any = None) -> Change:
    target = ref(f"key.{key}") if target is None else target
    return change(
        f"alias.{alias}",
        Resource.ALIAS,
        Action.CREATE,
        key,
        call("CreateAlias", AliasName=alias, TargetKeyId=target),
    )


def grant_create(key: str, name: str, target: Any = None) -> Change:
    target = ref(f"key.{key}") if target is None else target
    return change(
        f"grant.{key}.{name}",
        Resource.GRANT,
        Action.CREATE,
        key,
        call(
            "CreateGrant",
            KeyId=target,
            Name=f"kmsplan/{name}",
            GranteePrincipal=GRANTEE,
            Operations=["Decrypt", "GenerateDataKey"],
        ),
    )


def key_deletion(name: str, key_id: str, *, window: int = 7) -> Change:
    return change(
        f"key.{name}",
        Resource.KEY,
        Action.DELETE,
        name,
        call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=window),
    )


def plan(*changes: Change, gate: GateOptions | None = None) -> Plan:
    return Plan(
        stack=STACK,
        account_id=ACCOUNT,
        region=REGION,
        changes=changes,
        gate=gate or GateOptions(),
    )


ALLOW_DELETE = GateOptions(allow_delete=True, ignore_usage=True)
