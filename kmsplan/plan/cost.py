"""The monthly cost delta of a plan at KMS list prices. Pure.

Prices: https://aws.amazon.com/kms/pricing/ as read in 2025: each customer managed key costs $1
per month (prorated hourly), each multi-Region replica too; automatic or on-demand rotation
adds $1 per month for the first and for the second rotation of a key, and nothing for later
ones (so at most $3 per key-month); a key pending deletion costs nothing. Requests ($0.03 per
10,000 symmetric requests after 20,000 free per month) depend on use, not on the plan, and are
not counted.

The delta is a steady-state estimate: enabling rotation is counted at its cap (+$2 once the
key has rotated twice), because that is what the change commits the account to. Blocked
changes are not counted: they will not happen with the run's gate flags.
"""

from __future__ import annotations

from collections.abc import Iterable

from kmsplan.plan.types import Action, Change, CostLine, Resource

KEY_MONTHLY_USD = 1.00
ROTATION_MONTHLY_USD = 1.00  # per rotation ...
ROTATIONS_BILLED = 2  # ... for the first two rotations only
ROTATION_CAP_MONTHLY_USD = ROTATION_MONTHLY_USD * ROTATIONS_BILLED


def cost_lines(changes: Iterable[Change]) -> tuple[CostLine, ...]:
    """One CostLine per priced effect of the unblocked key changes, in plan order."""
    lines: list[CostLine] = []
    for change in changes:
        if change.resource not in (Resource.KEY, Resource.REPLICA) or change.is_blocked:
            continue
        if change.action is Action.CREATE:
            what = "new replica" if change.resource is Resource.REPLICA else "new key"
            lines.append(
                CostLine(description=f"{change.address}: {what}", monthly_usd=KEY_MONTHLY_USD)
            )
        elif change.action is Action.RESTORE:
            lines.append(
                CostLine(
                    description=f"{change.address}: restored key is billed again",
                    monthly_usd=KEY_MONTHLY_USD,
                )
            )
        elif change.action is Action.DELETE:
            lines.append(
                CostLine(
                    description=(
                        f"{change.address}: scheduled for deletion (free while pending; charges "
                        "for earlier rotations also end)"
                    ),
                    monthly_usd=-KEY_MONTHLY_USD,
                )
            )
        if _enables_rotation(change):
            lines.append(
                CostLine(
                    description=(
                        f"{change.address}: automatic rotation (+${ROTATION_MONTHLY_USD:.2f}/month "
                        f"for each of the first {ROTATIONS_BILLED} rotations)"
                    ),
                    monthly_usd=ROTATION_CAP_MONTHLY_USD,
                )
            )
    return tuple(lines)


def _enables_rotation(change: Change) -> bool:
    """Rotation turned on by this change (not a new period on a key that already rotates)."""
    if not any(call.operation == "EnableKeyRotation" for call in change.calls):
        return False
    if change.action is Action.CREATE:
        return True
    return any(
        a.name == "rotation.enabled" and a.after is True and a.before is not True
        for a in change.attributes
    )
