"""Actions and the one table of their words: symbol, legend, headlines, progress verbs,
summary counters. Every renderer, the summary line and apply's progress lines read it here.

Adding an action is one row in `ACTIONS` (plus the code that produces the action). A resource
whose deletion is said differently (a key is *scheduled for deletion*, a grant *revoked*), or a
step with words of its own (a key's trailing *disable*), is one row in `_SPECIAL_WORDS`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from kmsplan.plan.address import Address, Resource, Step


class Action(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"  # schedule key deletion, delete alias, revoke grant
    RESTORE = "restore"  # cancel a pending key deletion (and re-enable)
    ADOPT = "adopt"  # an existing key comes under kmsplan's management (its tags are set)
    RELEASE = "release"  # kmsplan stops managing a key (its tags are removed); nothing else

    @property
    def is_destructive(self) -> bool:
        return self is Action.DELETE

    @property
    def info(self) -> ActionInfo:
        return ACTIONS[self]

    @property
    def symbol(self) -> str:
        return ACTIONS[self].symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class Words:
    """How one kind of change is said."""

    headline: str  # text plan: "will be created"
    word: str  # markdown table: "create"
    starting: str  # apply progress: "creating..."
    finished: str  # apply progress: "created"


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionInfo:
    symbol: str  # Terraform's where Terraform has the action
    legend: str  # what the symbol means, in the legend
    style: str  # the text renderer's colour
    counter: str  # the summary's JSON member: "add"
    summary: str  # the summary line: "N to add"
    applied: str  # apply's report: "N added"
    # Shown in the summary line even at 0 (add, change, delete: Terraform's line); the others
    # only when there are any.
    always_counted: bool
    words: Words


ACTIONS: Mapping[Action, ActionInfo] = {
    Action.CREATE: ActionInfo(
        symbol="+",
        legend="create",
        style="green",
        counter="add",
        summary="to add",
        applied="added",
        always_counted=True,
        words=Words(
            headline="will be created", word="create", starting="creating", finished="created"
        ),
    ),
    Action.UPDATE: ActionInfo(
        symbol="~",
        legend="update in place",
        style="yellow",
        counter="change",
        summary="to change",
        applied="changed",
        always_counted=True,
        words=Words(
            headline="will be updated in place",
            word="update",
            starting="updating",
            finished="updated",
        ),
    ),
    Action.DELETE: ActionInfo(
        symbol="-",
        legend="delete",
        style="red",
        counter="delete",
        summary="to delete",
        applied="deleted",
        always_counted=True,
        words=Words(
            headline="will be deleted", word="delete", starting="deleting", finished="deleted"
        ),
    ),
    Action.RESTORE: ActionInfo(
        symbol="↺",
        legend="restore (cancel a pending key deletion)",
        style="cyan",
        counter="restore",
        summary="to restore",
        applied="restored",
        always_counted=False,
        words=Words(
            headline="will be restored",
            word="restore",
            starting="restoring",
            finished="restored",
        ),
    ),
    Action.ADOPT: ActionInfo(
        symbol="»",
        legend="adopt (an existing key comes under kmsplan's management)",
        style="cyan",
        counter="adopt",
        summary="to adopt",
        applied="adopted",
        always_counted=False,
        words=Words(
            headline="will be adopted", word="adopt", starting="adopting", finished="adopted"
        ),
    ),
    Action.RELEASE: ActionInfo(
        symbol="«",
        legend="release (kmsplan stops managing the key; nothing is deleted)",
        style="cyan",
        counter="release",
        summary="to release",
        applied="released",
        always_counted=False,
        words=Words(
            headline="will be released", word="release", starting="releasing", finished="released"
        ),
    ),
}

BLOCKED_SYMBOL = "!"
BLOCKED_LEGEND = "blocked by the safety gate"

# (action, resource, step) -> words, where they differ from the action's own.
_SPECIAL_WORDS: Mapping[tuple[Action, Resource, Step | None], Words] = {
    (Action.DELETE, Resource.KEY, None): Words(
        headline="will be scheduled for deletion",
        word="schedule deletion",
        starting="deleting",
        finished="scheduled for deletion",
    ),
    (Action.DELETE, Resource.GRANT, None): Words(
        headline="will be revoked", word="revoke", starting="deleting", finished="deleted"
    ),
    (Action.UPDATE, Resource.KEY, Step.DISABLE): Words(
        headline="will be disabled", word="disable", starting="disabling", finished="disabled"
    ),
    (Action.CREATE, Resource.REPLICA, None): Words(
        headline="will be replicated",
        word="replicate",
        starting="replicating",
        finished="replicated",
    ),
    (Action.DELETE, Resource.REPLICA, None): Words(
        headline="will be scheduled for deletion",
        word="schedule deletion",
        starting="deleting",
        finished="scheduled for deletion",
    ),
    (Action.UPDATE, Resource.KEY, Step.PRIMARY_REGION): Words(
        headline="will become the primary in its new Region",
        word="move primary",
        starting="moving the primary of",
        finished="moved its primary",
    ),
}


def words_for(action: Action, address: Address) -> Words:
    """How a change of `action` at `address` is said."""
    special = _SPECIAL_WORDS.get((action, address.resource, address.step))
    return special if special is not None else ACTIONS[action].words


def legend() -> dict[str, str]:
    """Symbol -> meaning, in table order, the blocked symbol last."""
    return {
        **{info.symbol: info.legend for info in ACTIONS.values()},
        BLOCKED_SYMBOL: BLOCKED_LEGEND,
    }
