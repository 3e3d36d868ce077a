"""The plan: plain, serializable data produced by the differ and read by renderers and the
applier.

A Change says *what* to do (the API calls, in order); the applier decides *how* (rate limits,
retries, concurrency). Key ids that only exist after apply are references: a parameter value
``{"$ref": "key.orders"}`` stands for the KeyId returned by the CreateKey call of change
``key.orders``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kmsplan.lint.finding import Finding
from kmsplan.model import Placement, Role
from kmsplan.plan.actions import Action
from kmsplan.plan.address import Address, Resource, Step
from kmsplan.plan.reasons import NO_REASON, Reason

# 2: the plan names the stack's role (``role``); a saved run of several stacks.
FORMAT_VERSION = 2

__all__ = [
    "FORMAT_VERSION",
    "Action",
    "Address",
    "ApiCall",
    "AttributeChange",
    "Change",
    "CostLine",
    "GateBlock",
    "GateOptions",
    "Plan",
    "Reason",
    "Resource",
    "Step",
    "is_ref",
    "ref",
]


def ref(address: str) -> dict[str, str]:
    """A reference to the KeyId that the CreateKey call of change `address` returns."""
    return {"$ref": str(address)}


def is_ref(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {"$ref"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiCall:
    operation: str  # KMS operation name as in the API reference: "CreateKey", "PutKeyPolicy"
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)  # JSON-shaped


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributeChange:
    name: str  # "description", "rotation.period_days", "tags.team", "policy", ...
    before: Any = None
    after: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GateBlock:
    """Why the safety gate blocks a change, and what would unblock it."""

    rule: str  # stable id: "deletion-protection", "allow-delete", "usage", "window",
    #            "mass-deletion", "immutable", "alias-takeover", "lockout", "account",
    #            "outside-stack" (a saved plan's call on a key the stack does not hold),
    #            "adopt"
    reason: str
    unblock: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    # "key.orders", "alias.alias/payments/orders", "grant.orders.orders-lambda"; a plain
    # string is parsed into an Address (a saved plan, a test's literal).
    address: Address
    resource: Resource
    action: Action
    key: str  # logical name of the key this change belongs to
    before: Mapping[str, Any] | None = field(default=None, hash=False)
    after: Mapping[str, Any] | None = field(default=None, hash=False)
    attributes: tuple[AttributeChange, ...] = ()  # for updates: what differs
    calls: tuple[ApiCall, ...] = ()
    depends_on: tuple[str, ...] = ()  # addresses that must be applied first
    blocked: tuple[GateBlock, ...] = ()
    # Why this change is in the plan: a code plus parameters, read as words (display only).
    reason: Reason = NO_REASON
    # Statement-level policy diff and access summary, when the policy changes (JSON-shaped,
    # produced by kmsplan.policy).
    policy_diff: Mapping[str, Any] | None = field(default=None, hash=False)
    # Where the change's calls go. None: the plan's home account and Region (Plan.placement),
    # which is where every change of a single-Region stack goes; a change elsewhere (a
    # replica's Region) names its own.
    placement: Placement | None = None

    def __post_init__(self) -> None:
        # Typed as Address and Reason; a str given at the edges is parsed once, here.
        address: object = self.address
        if not isinstance(address, Address):
            object.__setattr__(self, "address", Address.parse(str(address)))
        reason: object = self.reason
        if not isinstance(reason, Reason):
            object.__setattr__(self, "reason", Reason.parse(str(reason)))

    @property
    def destructive(self) -> bool:
        return self.action.is_destructive

    @property
    def is_blocked(self) -> bool:
        return bool(self.blocked)

    @property
    def is_trailing_disable(self) -> bool:
        """The DisableKey step of a key, run after the key's other changes and its grants
        (the plan graph's edge rule `disable_after_the_key_and_its_grants`)."""
        return self.address.step is Step.DISABLE


@dataclass(frozen=True, slots=True, kw_only=True)
class GateOptions:
    """The run's gate flags; `plan` and `apply` take the same ones. A saved plan records the
    flags it was planned with, for reviewers; `apply --plan` judges it again with its own."""

    allow_delete: bool = False
    allow_delete_all: bool = False
    unused_for_days: int = 30
    ignore_usage: bool = False
    allow_alias_takeover: bool = False
    bypass_policy_lockout_safety_check: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CostLine:
    description: str
    monthly_usd: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    stack: str
    account_id: str
    region: str
    # The stack's ``role:``, assumed to read and write; `apply --plan` assumes it again.
    role: Role | None = None
    changes: tuple[Change, ...] = ()  # in apply order
    gate: GateOptions = GateOptions()
    # Read-only notes for reviewers: foreign grants, unmanaged aliases, principal warnings.
    unmanaged: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # Lint findings for the keys this plan changes.
    findings: tuple[Finding, ...] = ()
    cost: tuple[CostLine, ...] = ()
    # address of every live object read -> digest of what was read; plus the discovered keys.
    fingerprint: Mapping[str, str] = field(default_factory=dict, hash=False)
    format_version: int = FORMAT_VERSION
    kmsplan_version: str = ""

    def count(self, action: Action) -> int:
        """Unblocked changes of `action`. A key's trailing disable is part of changing that
        key: it counts only when the key has no change of its own in the plan."""
        changed_keys = {
            c.key for c in self.changes if c.resource is Resource.KEY and not c.is_trailing_disable
        }
        return sum(
            1
            for c in self.changes
            if c.action is action
            and not c.is_blocked
            and not (c.is_trailing_disable and c.key in changed_keys)
        )

    @property
    def placement(self) -> Placement:
        """The stack's home account and Region."""
        return Placement(account_id=self.account_id, region=self.region)

    def placement_of(self, change: Change) -> Placement:
        """Where `change`'s calls go: its own placement, else the plan's home."""
        return change.placement or self.placement

    @property
    def blocked(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.is_blocked)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def monthly_cost_delta(self) -> float:
        return round(sum(line.monthly_usd for line in self.cost), 2)
