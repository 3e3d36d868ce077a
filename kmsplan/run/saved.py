"""`apply --plan FILE`: a saved plan checked again against live KMS before anything is written.

A saved plan is data from a file that may have passed through other hands. Apply trusts
nothing in it that it can establish itself:

- the file's content must match the checksum ``plan --out`` wrote (`kmsplan.plan.planfile`);
- the account and Region guards run against the credentials (`kmsplan.run.guards`);
- live KMS is read again the way the planning run read it, and must still match the plan's
  fingerprint (`reread`, `check_fresh`);
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime, timezone

from kmsplan.aws.client import AwsClients
from kmsplan.aws.reader import read_live
from kmsplan.errors import PolicyError, RefusedError
from kmsplan.model import Key, LiveState, Stack
from kmsplan.plan import gate as safety_gate
from kmsplan.plan.adoption import adopted_refs
from kmsplan.plan.planfile import fingerprint, stale_objects
from kmsplan.plan.types import Action, GateOptions, Plan
from kmsplan.policy.principals import same_account_iam_principals
from kmsplan.run.clients import Identity
from kmsplan.run.planning import same_account_iam, with_usage


def reread(plan: Plan, clients: AwsClients, identity: Identity) -> LiveState:
    """Read live KMS again the way the saved plan's run read it.

    The principals and the key usage the gate needs are read for what the plan's calls name
    and schedule for deletion, besides what the plan's fingerprint says was read: a plan file
    cannot make apply skip a check by leaving it out (reading more than the planning run did
    shows up as a stale plan)."""
    saved = plan.fingerprint
    account_id = identity.account_id
    principals = {a.removeprefix("principal.") for a in saved if a.startswith("principal.")}
    principals |= principals_in_calls(plan, account_id)
    usage = {a.removeprefix("usage.") for a in saved if a.startswith("usage.")}
    # The keys the plan creates were declared but not found: the reader looks harder for
    # declared keys it does not find, so declare the same ones to read the same way.
    created = tuple(
        Key(name=c.key)
        for c in plan.changes
        if c.action is Action.CREATE and c.address == f"key.{c.key}"
    )
    # Adoptions resolve the same references again.
    created += tuple(Key(name=n, adopt=ref) for n, ref in adopted_refs(plan.changes).items())
    stack = Stack(name=plan.stack, region=plan.region, keys=created)
    live = read_live(
        clients,
        stack,
        check_principals=sorted(principals),
        identity=(account_id, identity.caller_arn),
    )
    return with_usage(clients, live, usage | deletion_targets(plan, live))


def principals_in_calls(plan: Plan, account_id: str) -> set[str]:
    """Same-account IAM roles and users the plan's policies and grants name."""
    found: set[str] = set()
    for change in plan.changes:
        for call in change.calls:
            policy = call.params.get("Policy")
            if call.operation in ("CreateKey", "PutKeyPolicy") and isinstance(policy, str):
                with contextlib.suppress(PolicyError):  # the gate reports it
                    found |= same_account_iam_principals(policy, account_id)
            if call.operation == "CreateGrant":
                for param in ("GranteePrincipal", "RetiringPrincipal"):
                    value = call.params.get(param)
                    if isinstance(value, str):
                        found.add(same_account_iam(value, account_id))
    found.discard("")
    return found


def deletion_targets(plan: Plan, live: LiveState) -> set[str]:
    """Logical names of the live keys the plan's calls schedule for deletion."""
    ids = {
        call.params.get("KeyId")
        for change in plan.changes
        for call in change.calls
        if call.operation == "ScheduleKeyDeletion"
    }
    return {k.name for k in live.keys if k.key_id is not None and k.key_id in ids}


def check_fresh(path: str, plan: Plan, live: LiveState) -> None:
    """Refuse a plan whose live objects changed since it was saved."""
    stale = stale_objects(plan.fingerprint, fingerprint(live))
    if stale:
        shown = ", ".join(stale[:10]) + (f" and {len(stale) - 10} more" if len(stale) > 10 else "")
        raise RefusedError(
            f"stale plan: live KMS changed since {path} was saved ({shown}); "
            "run kmsplan plan again. Nothing was changed"
        )


def regate(plan: Plan, live: LiveState, gate: GateOptions, *, now: datetime | None = None) -> Plan:
    """The plan with the gate's verdicts of now (`live`, apply's flags `gate`) in place of the
    file's, and apply's flags as the plan's."""
    changes = safety_gate.recheck(
        plan.changes,
        stack=plan.stack,
        live=live,
        gate=gate,
        now=now or datetime.now(timezone.utc),
    )
    return dataclasses.replace(plan, changes=changes, gate=gate)
