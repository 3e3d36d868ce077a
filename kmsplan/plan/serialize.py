"""The public JSON form of a Plan, and the one-line summary every renderer ends with.

`plan_to_dict` is what `kmsplan plan --format json` prints and what a saved plan file holds;
`schemas/plan.schema.json` documents it. `plan_from_dict` reads it back: the round trip is exact
(``plan_from_dict(plan_to_dict(p)) == p``), also through ``json.dumps``/``json.loads``, as long
as the JSON-shaped fields of the plan (before/after, call params, policy diffs) hold only JSON
values (dict, list, str, int, float, bool, None). Lint findings are typed in the plan and take
`kmsplan lint --format json`'s form in the document.

Some members of the document are derived, for readers of the JSON who do not have kmsplan's
types: ``summary``, each change's ``destructive`` flag and ``gate.status``, and
``cost.monthly_delta_usd`` / ``cost.prices``. `plan_from_dict` ignores them and recomputes.

A run of several stacks has one document too (``kind: run``, `run_to_dict`): per stack its
status, where it ran, and its plan document or the error that stopped it, then the run's
summary. `StackStatus` is the one definition of a stack's result that the run's summary line
(text, Markdown) and the JSON summary count. `run_from_dict` reads back the plans of a run
whose every stack was planned (a saved run).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kmsplan.errors import KmsplanError
from kmsplan.lint.finding import Finding, Severity, finding_to_dict
from kmsplan.model import Location, Placement, Role, Stack
from kmsplan.plan.actions import ACTIONS
from kmsplan.plan.types import (
    FORMAT_VERSION,
    Action,
    Address,
    ApiCall,
    AttributeChange,
    Change,
    CostLine,
    GateBlock,
    GateOptions,
    Plan,
    Reason,
    Resource,
)

# Shown beside every cost figure: the delta is an estimate at list prices, not a bill.
PRICES_NOTE = (
    "KMS list prices: $1/key-month, first two rotations +$1/month each; requests not counted"
)

NO_CHANGES = "No changes. KMS matches the manifests."


class PlanFormatError(KmsplanError):
    """A plan document (a saved plan file) that kmsplan cannot read."""


# ---------------------------------------------------------------------------------------------
# Plan -> dict


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready dict; `format_version` is the first member."""
    return {
        "format_version": plan.format_version,
        "kmsplan_version": plan.kmsplan_version,
        "stack": plan.stack,
        "account_id": plan.account_id,
        "region": plan.region,
        "role": role_to_dict(plan.role),
        "summary": summary_counts(plan),
        "changes": [_change_to_dict(c) for c in plan.changes],
        "cost": {
            "monthly_delta_usd": plan.monthly_cost_delta,
            "lines": [
                {"description": line.description, "monthly_usd": line.monthly_usd}
                for line in plan.cost
            ],
            "prices": PRICES_NOTE,
        },
        "unmanaged": list(plan.unmanaged),
        "warnings": list(plan.warnings),
        "findings": [_finding_to_dict(f) for f in plan.findings],
        "gate": {
            "allow_delete": plan.gate.allow_delete,
            "allow_delete_all": plan.gate.allow_delete_all,
            "unused_for_days": plan.gate.unused_for_days,
            "ignore_usage": plan.gate.ignore_usage,
            "allow_alias_takeover": plan.gate.allow_alias_takeover,
            "bypass_policy_lockout_safety_check": plan.gate.bypass_policy_lockout_safety_check,
        },
        "fingerprint": dict(plan.fingerprint),
    }


def role_to_dict(role: Role | None) -> dict[str, Any] | None:
    """The stack's ``role:`` as the documents hold it; None without one."""
    if role is None:
        return None
    return {"arn": role.arn, "external_id": role.external_id, "session_name": role.session_name}


def _change_to_dict(change: Change) -> dict[str, Any]:
    document: dict[str, Any] = {
        "address": change.address,
        "resource": change.resource.value,
        "action": change.action.value,
        "key": change.key,
        "destructive": change.destructive,
        "gate": {
            "status": "blocked" if change.is_blocked else "allowed",
            "blocks": [
                {"rule": b.rule, "reason": b.reason, "unblock": b.unblock} for b in change.blocked
            ],
        },
        "reason": change.reason,
        "before": _json_value(change.before),
        "after": _json_value(change.after),
        "attributes": [
            {"name": a.name, "before": _json_value(a.before), "after": _json_value(a.after)}
            for a in change.attributes
        ],
        "calls": [
            {"operation": call.operation, "params": _json_value(call.params)}
            for call in change.calls
        ],
        "depends_on": list(change.depends_on),
        "policy_diff": _json_value(change.policy_diff),
    }
    if change.placement is not None:
        # Only where it differs from the plan's home: a single-Region plan reads as before.
        document["placement"] = {
            "account_id": change.placement.account_id,
            "region": change.placement.region,
        }
    return document


def _json_value(value: Any) -> Any:
    """A fresh JSON-shaped copy: mappings become dicts, sequences lists. Copying keeps the
    returned document independent of the (immutable) plan it came from."""
    kind = type(value)
    # Exact-type checks first: this runs on every value of a 10,000-key plan, and the
    # Mapping ABC check is slow.
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_json_value(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# dict -> Plan


def plan_from_dict(document: Mapping[str, Any]) -> Plan:
    """Read a plan document back. Raises PlanFormatError for an unknown format_version or a
    document that does not have the shape `plan_to_dict` writes."""
    if not isinstance(document, Mapping):
        raise PlanFormatError("plan document: expected a JSON object")
    check_format_version(document)
    return _plan_from_reader(_Reader(document, ""))


def _plan_from_reader(reader: _Reader) -> Plan:
    """The plan at `reader` (the document, or a run's ``stacks[i].plan``); its format_version
    was checked."""
    gate = reader.mapping("gate")
    cost = reader.mapping("cost")
    return Plan(
        format_version=FORMAT_VERSION,
        kmsplan_version=reader.string("kmsplan_version"),
        stack=reader.string("stack"),
        account_id=reader.string("account_id"),
        region=reader.string("region"),
        role=_role(reader),
        changes=tuple(_change_from_dict(c) for c in reader.objects("changes")),
        gate=GateOptions(
            allow_delete=gate.boolean("allow_delete"),
            allow_delete_all=gate.boolean("allow_delete_all"),
            unused_for_days=gate.integer("unused_for_days"),
            ignore_usage=gate.boolean("ignore_usage"),
            allow_alias_takeover=gate.boolean("allow_alias_takeover"),
            bypass_policy_lockout_safety_check=gate.boolean("bypass_policy_lockout_safety_check"),
        ),
        unmanaged=reader.strings("unmanaged"),
        warnings=reader.strings("warnings"),
        findings=tuple(_finding_from_dict(f) for f in reader.objects("findings")),
        cost=tuple(
            CostLine(description=line.string("description"), monthly_usd=line.number("monthly_usd"))
            for line in cost.objects("lines")
        ),
        fingerprint={
            k: _string(v, reader._where(f"fingerprint.{k}"))
            for k, v in reader.raw_mapping("fingerprint").items()
        },
    )


def check_format_version(document: Mapping[str, Any]) -> None:
    """kmsplan reads only the format_version it writes: a document of another one (an older
    kmsplan's saved plan, a newer one's) is refused, with the way out."""
    version = document.get("format_version")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise PlanFormatError(
            f"plan document: unsupported format_version {version!r} "
            f"(this kmsplan reads format_version {FORMAT_VERSION}); run kmsplan plan again"
        )


def _change_from_dict(reader: _Reader) -> Change:
    gate = reader.mapping("gate")
    before = reader.optional_raw_mapping("before")
    after = reader.optional_raw_mapping("after")
    policy_diff = reader.optional_raw_mapping("policy_diff")
    address = reader.address("address")
    resource = reader.enum("resource", Resource)
    if address.resource is not resource:
        raise reader._fail("resource", f"{address.resource.value}, the resource of {address}")
    return Change(
        address=address,
        resource=resource,
        action=reader.enum("action", Action),
        key=reader.string("key"),
        before=dict(before) if before is not None else None,
        after=dict(after) if after is not None else None,
        attributes=tuple(
            AttributeChange(name=a.string("name"), before=a.raw("before"), after=a.raw("after"))
            for a in reader.objects("attributes")
        ),
        calls=tuple(
            ApiCall(operation=c.string("operation"), params=dict(c.raw_mapping("params")))
            for c in reader.objects("calls")
        ),
        depends_on=reader.strings("depends_on"),
        blocked=tuple(
            GateBlock(rule=b.string("rule"), reason=b.string("reason"), unblock=b.string("unblock"))
            for b in gate.objects("blocks")
        ),
        reason=Reason.parse(reader.string("reason")),
        policy_diff=dict(policy_diff) if policy_diff is not None else None,
        placement=_placement(reader),
    )


def _role(reader: _Reader) -> Role | None:
    if reader.raw("role") is None:
        return None
    role = reader.mapping("role")
    return Role(
        arn=role.string("arn"),
        external_id=role.nullable_string("external_id"),
        session_name=role.nullable_string("session_name"),
    )


def _placement(reader: _Reader) -> Placement | None:
    if "placement" not in reader.data:
        return None
    where = reader.mapping("placement")
    return Placement(account_id=where.string("account_id"), region=where.string("region"))


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise PlanFormatError(f"plan document: {path}: expected a string")
    return value


class _Reader:
    """Typed access to one object of the document; errors name the member's path."""

    __slots__ = ("data", "path")

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def _where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _fail(self, name: str, expected: str) -> PlanFormatError:
        return PlanFormatError(f"plan document: {self._where(name)}: expected {expected}")

    def raw(self, name: str) -> Any:
        if name not in self.data:
            raise PlanFormatError(f"plan document: {self._where(name)}: missing")
        return self.data[name]

    def string(self, name: str) -> str:
        value = self.raw(name)
        if not isinstance(value, str):
            raise self._fail(name, "a string")
        return value

    def address(self, name: str) -> Address:
        try:
            return Address.parse(self.string(name))
        except ValueError:
            raise self._fail(
                name, "a change address (key.NAME, alias.alias/NAME, grant.KEY.NAME)"
            ) from None

    def boolean(self, name: str) -> bool:
        value = self.raw(name)
        if not isinstance(value, bool):
            raise self._fail(name, "true or false")
        return value

    def integer(self, name: str) -> int:
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(name, "an integer")
        return value

    def number(self, name: str) -> float:
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(name, "a number")
        return float(value)

    def enum(self, name: str, kind: type[Action] | type[Resource] | type[Severity]) -> Any:
        value = self.raw(name)
        try:
            return kind(value)
        except ValueError:
            raise self._fail(name, "one of " + ", ".join(m.value for m in kind)) from None

    def raw_mapping(self, name: str) -> Mapping[str, Any]:
        value = self.raw(name)
        if not isinstance(value, Mapping):
            raise self._fail(name, "an object")
        return value

    def optional_raw_mapping(self, name: str) -> Mapping[str, Any] | None:
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self._fail(name, "an object or null")
        return value

    def nullable_string(self, name: str) -> str | None:
        """A string member that may be null, not absent."""
        value = self.raw(name)
        if value is not None and not isinstance(value, str):
            raise self._fail(name, "a string or null")
        return value

    def optional_string(self, name: str) -> str | None:
        """A string member that may be null or absent."""
        value = self.data.get(name)
        if value is not None and not isinstance(value, str):
            raise self._fail(name, "a string or null")
        return value

    def mapping(self, name: str) -> _Reader:
        return _Reader(self.raw_mapping(name), self._where(name))

    def _list(self, name: str) -> Sequence[Any]:
        value = self.raw(name)
        if not isinstance(value, list):
            raise self._fail(name, "an array")
        return value

    def objects(self, name: str) -> list[_Reader]:
        readers = []
        for i, item in enumerate(self._list(name)):
            if not isinstance(item, Mapping):
                raise self._fail(f"{name}[{i}]", "an object")
            readers.append(_Reader(item, f"{self._where(name)}[{i}]"))
        return readers

    def strings(self, name: str) -> tuple[str, ...]:
        items = self._list(name)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise self._fail(f"{name}[{i}]", "a string")
        return tuple(items)


# ---------------------------------------------------------------------------------------------
# Findings: typed in the plan, `kmsplan lint --format json`'s form in the document


def _finding_to_dict(finding: Finding) -> dict[str, Any]:
    """The lint JSON form, with `suppression_reason` only when there is one."""
    document = finding_to_dict(finding)
    if document["suppression_reason"] is None:
        del document["suppression_reason"]
    return document


def _finding_from_dict(reader: _Reader) -> Finding:
    location = reader.data.get("location")
    return Finding(
        rule=reader.string("rule"),
        severity=reader.enum("severity", Severity),
        title=reader.string("title"),
        message=reader.string("message"),
        key=reader.string("key"),
        path=reader.string("path") if "path" in reader.data else "",
        location=None if location is None else _location(reader.mapping("location")),
        suppressed=reader.boolean("suppressed"),
        suppression_reason=reader.optional_string("suppression_reason"),
    )


def _location(reader: _Reader) -> Location:
    return Location(
        file=reader.string("file"), line=reader.integer("line"), column=reader.integer("column")
    )


# ---------------------------------------------------------------------------------------------
# Summary


def summary_counts(plan: Plan) -> dict[str, int]:
    """Unblocked changes per action, and the number of blocked changes. A blocked change
    counts only as blocked: it will not happen unless the run's gate flags change. A key's
    trailing disable (``key.<name>.disable``) is part of changing that key and counts only
    when the key has no change of its own (see `Plan.count`)."""
    return {
        **{info.counter: plan.count(action) for action, info in ACTIONS.items()},
        "blocked": len(plan.blocked),
    }


def format_usd(amount: float) -> str:
    """A signed dollar delta: "+$2.00", "-$1.00", "$0.00"."""
    cents = round(amount * 100)
    if cents == 0:
        return "$0.00"
    sign = "+" if cents > 0 else "-"
    return f"{sign}${abs(cents) / 100:.2f}"


def summary_line(plan: Plan) -> str:
    """Terraform's summary line plus the monthly cost delta:

    ``Plan: 2 to add, 1 to change, 1 to delete, 0 blocked. Monthly cost: +$2.00 (KMS list
    prices: ...).``

    Restores (cancelling a pending key deletion) are neither adds nor changes: a restored key
    is billed again, which a reviewer should see, so they get their own ``N to restore`` count,
    shown only when there are any. An empty plan reads ``No changes. KMS matches the
    manifests.``
    """
    counts, cost = summary_sentences(plan)
    return f"{counts} {cost}" if cost else counts


def summary_sentences(plan: Plan) -> tuple[str, str]:
    """The summary line's two sentences, for renderers that set them apart: the counts
    (``Plan: ...``) and the cost (``Monthly cost: ...``; empty for an empty plan)."""
    if not plan.has_changes:
        return NO_CHANGES, ""
    counts = summary_counts(plan)
    parts = [
        f"{counts[info.counter]} {info.summary}"
        for info in ACTIONS.values()
        if info.always_counted or counts[info.counter]
    ]
    parts.append(f"{counts['blocked']} blocked")
    return (
        f"Plan: {', '.join(parts)}.",
        f"Monthly cost: {format_usd(plan.monthly_cost_delta)} ({PRICES_NOTE}).",
    )


# ---------------------------------------------------------------------------------------------
# A run of several stacks


class Outcome(Protocol):
    """What one stack of a run came to (the run layer's `StackOutcome`): its plan, or the
    error that stopped it."""

    @property
    def stack(self) -> Stack: ...

    @property
    def plan(self) -> Plan | None: ...

    @property
    def error(self) -> str | None: ...


class StackStatus(enum.Enum):
    """A stack's result in a run; the run's summary counts stacks per status."""

    CHANGES = "changes"
    BLOCKED = "blocked"
    FAILED = "failed"
    NO_CHANGES = "no_changes"

    @classmethod
    def of(cls, plan: Plan | None) -> StackStatus:
        """Failed without a plan; else blocked when the gate blocks anything, else with or
        without changes."""
        if plan is None:
            return cls.FAILED
        if plan.blocked:
            return cls.BLOCKED
        return cls.CHANGES if plan.has_changes else cls.NO_CHANGES

    @property
    def counter(self) -> str:
        """Its member in the run document's summary: ``with_changes``, ``blocked``, ..."""
        return _RUN_COUNTERS[self]

    @property
    def words(self) -> str:
        """For people: ``changes``, ``no changes``."""
        return self.value.replace("_", " ")


_RUN_COUNTERS = {
    StackStatus.CHANGES: "with_changes",
    StackStatus.BLOCKED: "blocked",
    StackStatus.FAILED: "failed",
    StackStatus.NO_CHANGES: "without_changes",
}

RUN_KIND = "run"


def run_counts(statuses: Sequence[StackStatus]) -> dict[str, int]:
    """``{"stacks": n, "with_changes": n, "blocked": n, "failed": n, "without_changes": n}``:
    every stack counted once, under its status."""
    return {"stacks": len(statuses), **{s.counter: statuses.count(s) for s in StackStatus}}


def run_summary_line(statuses: Sequence[StackStatus]) -> str:
    """``Run: 3 stacks: 1 with changes, 0 blocked, 1 failed, 1 without changes.``"""
    counts = run_counts(statuses)
    total = counts.pop("stacks")
    parts = ", ".join(f"{n} {counter.replace('_', ' ')}" for counter, n in counts.items())
    return f"Run: {total} stack{'s' if total != 1 else ''}: {parts}."


@dataclass(frozen=True, slots=True)
class _Entry:
    """One stack of a run document: its name, what its manifests declare (unknown for a saved
    run's stack: its plan says), its plan or its error."""

    name: str
    declared: Stack | None
    plan: Plan | None
    error: str | None


def run_to_dict(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The run document of several stacks (``kind: run``): per stack its status, where it
    ran, and its plan document or the error that stopped it; one summary for the run."""
    return _run_document([_Entry(o.stack.name, o.stack, o.plan, o.error) for o in outcomes])


def plans_to_run_dict(plans: Sequence[Plan]) -> dict[str, Any]:
    """The run document of stacks that were all planned: the same document `run_to_dict`
    makes of their outcomes."""
    return _run_document([_Entry(p.stack, None, p, None) for p in plans])


def _run_document(entries: Sequence[_Entry]) -> dict[str, Any]:
    statuses = [StackStatus.of(e.plan) for e in entries]
    return {
        "format_version": FORMAT_VERSION,
        "kind": RUN_KIND,
        "summary": run_counts(statuses),
        "stacks": [_entry_to_dict(e, s) for e, s in zip(entries, statuses, strict=True)],
    }


def _entry_to_dict(entry: _Entry, status: StackStatus) -> dict[str, Any]:
    plan, declared = entry.plan, entry.declared
    # Where the stack ran: its plan's account and Region; for a stack that failed, what its
    # manifests declare (null where they declare nothing).
    account: str | None
    region: str | None
    role: Role | None
    if plan is not None:
        account, region, role = plan.account_id, plan.region, plan.role
    elif declared is not None:
        account, region, role = declared.account, declared.region, declared.role
    else:
        account = region = role = None
    return {
        "stack": entry.name,
        "status": status.value,
        "account": account,
        "region": region,
        "role": role_to_dict(role),
        "error": None if plan is not None else (entry.error or ""),
        "plan": plan_to_dict(plan) if plan is not None else None,
    }


def is_run_document(document: object) -> bool:
    """Whether `document` is a run document (``kind: run``) rather than a plan document."""
    return isinstance(document, Mapping) and "kind" in document


def run_from_dict(document: Mapping[str, Any]) -> tuple[Plan, ...]:
    """The plans of a run document whose every stack was planned (a saved run), in its
    order. Raises PlanFormatError for an unknown format_version, a stack without a plan, two
    plans of one stack, or a document that does not have the shape `run_to_dict` writes.
    ``summary`` and each stack's ``status``, ``account``, ``region`` and ``role`` are derived
    from the plans: they are not read."""
    if not isinstance(document, Mapping):
        raise PlanFormatError("plan document: expected a JSON object")
    check_format_version(document)
    reader = _Reader(document, "")
    if reader.raw("kind") != RUN_KIND:
        raise reader._fail("kind", f'"{RUN_KIND}"')
    entries = reader.objects("stacks")
    if not entries:
        raise reader._fail("stacks", "at least one stack")
    plans: list[Plan] = []
    for entry in entries:
        if entry.raw("plan") is None:
            name = entry.data.get("stack")
            raise PlanFormatError(
                f"plan document: {entry._where('plan')}: stack {name!r} has no plan (a run in "
                "which a stack failed is never saved)"
            )
        nested = entry.mapping("plan")
        version = nested.raw("format_version")
        if isinstance(version, bool) or version != FORMAT_VERSION:
            raise nested._fail("format_version", str(FORMAT_VERSION))
        plan = _plan_from_reader(nested)
        if any(p.stack == plan.stack for p in plans):
            raise PlanFormatError(
                f"plan document: {nested._where('stack')}: a second plan of stack {plan.stack!r}"
            )
        plans.append(plan)
    return tuple(plans)
