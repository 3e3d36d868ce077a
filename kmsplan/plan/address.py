"""Addresses: what a change is about, as a small type instead of a string parsed back.

An address reads like Terraform's (``key.orders``, ``alias.alias/payments/orders``,
``grant.orders.orders-lambda``) and *is* that string — plans, JSON documents and progress
lines show it as is — but code asks it for its parts (`resource`, `key`, `name`, `step`)
instead of splitting it. Addresses are built from their parts by the differ; `Address.parse`
is for the edges only (a saved plan read back, a test's literal).

A multi-Region key's replica is a resource of its own, ``replica.<key>.<region>``; an alias in
a replica's Region says its Region after the name, ``alias.alias/orders@eu-west-1`` (aliases
are regional, and alias names hold no ``@``). An alias without a Region is in the plan's home
Region.

A step is a follow-up change of a resource that must run apart from the resource's own change:
``key.orders.disable`` disables key ``orders`` after its other changes and its grants (KMS
refuses CreateGrant and rotation changes on a disabled key); ``key.orders.duplicates``
releases the other live keys that carry the name ``orders`` (two applies raced). Key, grant
and alias names hold no dots, so the forms never collide.
"""

from __future__ import annotations

import enum
from typing import Any


class Resource(str, enum.Enum):
    KEY = "key"
    ALIAS = "alias"
    GRANT = "grant"
    REPLICA = "replica"


class Step(str, enum.Enum):
    """A follow-up change of a resource, ordered by the plan graph (`kmsplan.plan.graph`)."""

    DISABLE = "disable"  # a key's trailing DisableKey
    PRIMARY_REGION = "primary-region"  # UpdatePrimaryRegion, before the key's other changes
    DUPLICATES = "duplicates"  # the release of other live keys carrying the key's name


class Address(str):
    """A change's address: a `str` that knows its parts.

    - ``key.<key>`` — a key; ``key.<key>.<step>`` — a follow-up step of it;
    - ``alias.<alias name>`` — an alias (its key is the change's `key`);
    - ``grant.<key>.<grant>`` — a kmsplan grant on a key;
    - ``replica.<key>.<region>`` — a multi-Region key's replica in another Region;
    - ``alias.<alias name>@<region>`` — an alias in a replica's Region.
    """

    resource: Resource
    # the key's logical name, the alias name, the grant's logical name or the replica's Region
    name: str
    key: str | None  # the key a key, grant or replica address belongs to; None for an alias
    step: Step | None
    region: str | None  # a replica's Region, or a regional alias's; None: the plan's home

    def __new__(
        cls,
        text: str,
        *,
        resource: Resource,
        name: str,
        key: str | None,
        step: Step | None = None,
        region: str | None = None,
    ) -> Address:
        address = super().__new__(cls, text)
        address.resource = resource
        address.name = name
        address.key = key
        address.step = step
        address.region = region
        return address

    def __reduce__(self) -> tuple[Any, ...]:
        return (Address.parse, (str(self),))  # copy and pickle: parse the text again

    # ---- constructors ----

    @classmethod
    def of_key(cls, key: str, step: Step | None = None) -> Address:
        text = f"key.{key}" if step is None else f"key.{key}.{step.value}"
        return cls(text, resource=Resource.KEY, name=key, key=key, step=step)

    @classmethod
    def of_alias(cls, alias: str, region: str | None = None) -> Address:
        text = f"alias.{alias}" if region is None else f"alias.{alias}@{region}"
        return cls(text, resource=Resource.ALIAS, name=alias, key=None, region=region)

    @classmethod
    def of_replica(cls, key: str, region: str) -> Address:
        return cls(
            f"replica.{key}.{region}",
            resource=Resource.REPLICA,
            name=region,
            key=key,
            region=region,
        )

    @classmethod
    def of_grant(cls, key: str, grant: str) -> Address:
        return cls(f"grant.{key}.{grant}", resource=Resource.GRANT, name=grant, key=key)

    @classmethod
    def parse(cls, text: str) -> Address:
        """An address from its string form. Raises ValueError for anything else."""
        if isinstance(text, Address):
            return text
        kind, _, rest = str(text).partition(".")
        if kind == Resource.ALIAS.value and rest.startswith("alias/"):
            alias, at, region = rest.rpartition("@")
            if at and region and "." not in region:
                return cls.of_alias(alias, region)
            return cls.of_alias(rest)
        parts = rest.split(".")
        if kind == Resource.KEY.value and parts[0]:
            if len(parts) == 1:
                return cls.of_key(parts[0])
            if len(parts) == 2 and parts[1] in _STEPS:
                return cls.of_key(parts[0], Step(parts[1]))
        if kind == Resource.GRANT.value and len(parts) == 2 and all(parts):
            return cls.of_grant(parts[0], parts[1])
        if kind == Resource.REPLICA.value and len(parts) == 2 and all(parts):
            return cls.of_replica(parts[0], parts[1])
        raise ValueError(
            f"not a change address: {text!r} (key.NAME, key.NAME.STEP, alias.alias/NAME, "
            "alias.alias/NAME@REGION, grant.KEY.NAME or replica.KEY.REGION)"
        )

    # ---- questions ----

    @property
    def is_step(self) -> bool:
        return self.step is not None

    @property
    def owner(self) -> Address:
        """The resource a step belongs to (``key.orders`` for ``key.orders.disable``); the
        address itself otherwise."""
        if self.step is None or self.key is None:
            return self
        return Address.of_key(self.key)


_STEPS = frozenset(step.value for step in Step)
