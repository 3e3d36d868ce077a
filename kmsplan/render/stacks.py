"""What every report of several stacks (plan, lint, validate) says the same way: the stacks
found, with the account and Region each declares, and the heading above each stack's part.
`validate`'s report is here too: it is no more than that."""

from __future__ import annotations

from collections.abc import Sequence

from kmsplan.model import Stack
from kmsplan.render.terminal import one_line


def where(stack: Stack) -> str:
    """`111122223333, eu-west-1`: the stack's account and Region as its manifests declare
    them, or what stands in for one that is not declared."""
    account = stack.account or "(account of the credentials)"
    region = stack.region or "(Region of the run)"
    return f"{account}, {region}"


def stacks_found(stacks: Sequence[Stack]) -> list[str]:
    """What a run of several stacks found, before anything else it says: `Stacks (2):`, then
    one line per stack with its name, account and Region."""
    lines = [f"Stacks ({len(stacks)}):"]
    lines += [f"  {one_line(s.name)}  {where(s)}" for s in stacks]
    return lines


def heading(stack: Stack) -> str:
    """The line above a stack's part of a run's report."""
    return f"=== stack {one_line(stack.name)} ==="


def ok_line(stack: Stack) -> str:
    """`OK: 3 keys in stack payments`: a stack that validated."""
    count = len(stack.keys)
    return f"OK: {count} {'key' if count == 1 else 'keys'} in stack {stack.name}"


def render_valid(stacks: Sequence[Stack]) -> str:
    """`kmsplan validate`: one stack's OK line; of several, the stacks found, then each
    one's OK line."""
    if len(stacks) == 1:
        return ok_line(stacks[0]) + "\n"
    lines = [*stacks_found(stacks), "", *(ok_line(s) for s in stacks)]
    return "\n".join(lines) + "\n"
