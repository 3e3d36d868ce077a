"""Planning a loaded stack against live KMS: the steps of a run between the guards and the
plan.

1. fill ``${account_id}``/``${region}``;
2. read the stack's live state (checking the principals the manifests name), then ask KMS for
   the last use of the keys the plan would delete — known only once live keys are discovered;
3. diff, attach the lint findings for the keys the plan changes, the fingerprint of what was
   read, kmsplan's version, and the stack's role (a saved plan is applied with it).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable
from datetime import datetime

from kmsplan import __version__
from kmsplan.aws.client import AwsClients, caller_identity, run_concurrently
from kmsplan.aws.reader import last_usage, read_live
from kmsplan.errors import PolicyError
from kmsplan.lint.engine import lint_stack
from kmsplan.lint.finding import Finding
from kmsplan.manifest import resolve_variables
from kmsplan.model import LiveState, Placement, Stack
from kmsplan.plan.differ import diff
from kmsplan.plan.planfile import fingerprint
from kmsplan.plan.types import Action, GateOptions, Plan
from kmsplan.policy.principals import same_account_iam_principals
from kmsplan.run.clients import Identity
from kmsplan.run.guards import Intent, check_account


def plan_stack(
    clients: AwsClients, desired: Stack, gate: GateOptions, *, now: datetime | None = None
) -> Plan:
    """Plan a loaded stack with existing clients (the benchmark's): identity and account guard,
    then `plan_live`."""
    account_id, caller_arn = caller_identity(clients)
    identity = Identity(
        home=Placement(account_id=account_id, region=clients.region), caller_arn=caller_arn
    )
    check_account(desired.account, identity, intent=Intent.PLAN)
    return plan_live(clients, desired, gate, identity=identity, now=now)


def plan_live(
    clients: AwsClients,
    desired: Stack,
    gate: GateOptions,
    *,
    identity: Identity,
    now: datetime | None = None,
) -> Plan:
    """Steps 1-3 for a stack that passed the guards: variables, the live read, the diff,
    findings and fingerprint."""
    account_id = identity.account_id
    desired = resolve_variables(desired, account_id=account_id, region=clients.region)
    live = read_live(
        clients,
        desired,
        check_principals=principals_to_check(desired, account_id),
        identity=(account_id, identity.caller_arn),
    )
    live = with_usage(clients, live, deletion_candidates(desired, live))
    plan = diff(desired, live, gate, now=now)
    return dataclasses.replace(
        plan,
        findings=findings_for_changed_keys(desired, live, plan),
        fingerprint=fingerprint(live),
        kmsplan_version=__version__,
        role=desired.role,
    )


def principals_to_check(desired: Stack, account_id: str) -> list[str]:
    """Same-account IAM roles and users named in the declared policies and grants: KMS rejects
    a policy or grant naming one that does not exist."""
    found: set[str] = set()
    for key in desired.keys:
        if key.policy is not None:
            # Validation already reported an invalid document; the gate reports it again.
            with contextlib.suppress(PolicyError):
                found |= same_account_iam_principals(key.policy, account_id)
        for g in key.grants:
            found.update(same_account_iam(p, account_id) for p in (g.grantee, g.retiring_principal))
    found.discard("")
    return sorted(found)


def same_account_iam(arn: str | None, account_id: str) -> str:
    """`arn` if it is an IAM role or user of `account_id`, else ""."""
    parts = (arn or "").split(":", 5)
    is_entity = len(parts) == 6 and parts[5].startswith(("role/", "user/"))
    return arn if arn and is_entity and parts[2] == "iam" and parts[4] == account_id else ""


def deletion_candidates(desired: Stack, live: LiveState) -> list[str]:
    """Logical names of live keys the diff will schedule for deletion: the stack's keys that
    are no longer declared (nor released) and not already pending deletion."""
    declared = {k.name for k in desired.keys} | set(desired.released)
    return sorted(
        {
            k.name
            for k in live.keys
            if k.name not in declared and not (k.state is not None and k.state.is_pending_deletion)
        }
    )


def with_usage(clients: AwsClients, live: LiveState, candidates: Iterable[str]) -> LiveState:
    """`live` with the GetKeyLastUsage answers for `candidates` (by logical name)."""
    names = set(candidates)
    wanted = [k for k in live.keys if k.name in names and k.key_id]
    if not wanted:
        return live
    answers = run_concurrently(
        lambda k: last_usage(clients, str(k.key_id)), wanted, clients.parallelism
    )
    usage = dict(live.last_usage)
    usage.update({k.name: a for k, a in zip(wanted, answers, strict=True)})
    return dataclasses.replace(live, last_usage=usage)


def findings_for_changed_keys(desired: Stack, live: LiveState, plan: Plan) -> tuple[Finding, ...]:
    """The lint findings of the declared keys this plan touches (not those it deletes)."""
    changed = {c.key for c in plan.changes if c.action is not Action.DELETE}
    declared = {k.name for k in desired.keys}
    keys = sorted(changed & declared)
    if not keys:
        return ()
    live_policies = {k.name: k.policy for k in live.keys if k.policy is not None}
    for target in live.adoptions:  # a key being adopted is linted like the stack's own
        if target.key is not None and target.key.policy is not None:
            live_policies.setdefault(target.name, target.key.policy)
    findings = lint_stack(
        desired, live_policies=live_policies, keys=keys, account_id=live.account_id
    )
    return tuple(findings)
