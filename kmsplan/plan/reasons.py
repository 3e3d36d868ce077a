"""Why a change is in the plan: a code plus parameters, put into words in one place.

The differ says *why* with a `Why` code and its parameters (`because(Why.ALIAS_MOVES,
old="key.a", new="key.b")`); `WORDS` is the one table that turns a code into words. A
`Reason` is the words — a `str`, which is what plans print and JSON documents carry — and
keeps the parts it was made of, so code can ask `Why.IMMUTABLE in reason.codes` instead of
searching the text. A reason read back from a saved plan is parsed into its parts again
(`Reason.parse`); text no template matches stays one `Why.NOTE`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache


class Why(str, enum.Enum):
    KEY_NOT_FOUND = "key-not-found"
    KEY_UNDECLARED = "key-undeclared"
    KEY_PENDING_DELETION = "key-pending-deletion"
    IMMUTABLE = "immutable"
    TEMPORARY_ENABLE = "temporary-enable"
    POLICY_LABELS_ONLY = "policy-labels-only"
    DISABLE_DECLARED = "disable-declared"
    DISABLE_AFTER_TEMPORARY_ENABLE = "disable-after-temporary-enable"
    DECLARED_ON = "declared-on"
    NO_LONGER_DECLARED_ON = "no-longer-declared-on"
    ALIAS_MOVES = "alias-moves"
    ALIAS_TAKEOVER = "alias-takeover"
    GRANT_DUPLICATES = "grant-duplicates"
    GRANT_REPLACED = "grant-replaced"
    WINDOW_RECORDED = "window-recorded"
    WINDOW_DEFAULT = "window-default"
    RELEASED = "released"
    ADOPTED = "adopted"
    ADOPT_DECLARED = "adopt-declared"
    REPLICA_NOT_FOUND = "replica-not-found"
    REPLICA_UNDECLARED = "replica-undeclared"
    PRIMARY_REGION_MOVES = "primary-region-moves"
    DUPLICATE_KEYS = "duplicate-keys"
    NOTE = "note"  # free text that matches no template (a plan document edited by hand)


# The one table of words. `{name}` is a parameter; a reason of several parts joins them
# with "; ".
WORDS: Mapping[Why, str] = {
    Why.KEY_NOT_FOUND: "declared in the manifest; no live key carries this name",
    Why.KEY_UNDECLARED: "a live key of this stack that the manifests no longer declare",
    Why.KEY_PENDING_DELETION: "declared, but the live key is pending deletion",
    Why.IMMUTABLE: "immutable attribute(s) differ: {attributes}",
    Why.TEMPORARY_ENABLE: (
        "enabled temporarily: KMS refuses CreateGrant/EnableKeyRotation on a disabled key; "
        "disabled again at the end of this apply"
    ),
    Why.POLICY_LABELS_ONLY: "policy statement labels (Sid) differ; access is unchanged",
    Why.DISABLE_DECLARED: (
        "declared enabled: false; disabled after the key's other changes and its grants, "
        "which KMS refuses on a disabled key"
    ),
    Why.DISABLE_AFTER_TEMPORARY_ENABLE: (
        "disabled again after the temporary enable in {key}; if an apply stops before this "
        "step, the key stays enabled and the next plan disables it"
    ),
    Why.DECLARED_ON: "declared on {key}",
    Why.NO_LONGER_DECLARED_ON: "no longer declared on {key}",
    Why.ALIAS_MOVES: "moves from {old} to {new}",
    Why.ALIAS_TAKEOVER: "moves from key {old_key_id}, outside stack {stack} to {new}",
    Why.GRANT_DUPLICATES: "duplicate grants with this name: the extra ones are revoked",
    Why.GRANT_REPLACED: (
        "grants cannot be modified: the new grant is created first, then the old one is "
        "revoked, so access never lapses"
    ),
    Why.WINDOW_RECORDED: "pending window {days} days, as recorded on the key",
    Why.WINDOW_DEFAULT: (
        "pending window {days} days from defaults.deletion.window_days (else 30): the key "
        "carries no recorded window"
    ),
    Why.RELEASED: (
        "listed in released: kmsplan stops managing the key and removes its kmsplan: tags; "
        "the key, its policy, aliases and grants stay as they are"
    ),
    Why.ADOPTED: "adopt: {ref}: existing key {key_id}, not managed by kmsplan yet",
    Why.ADOPT_DECLARED: "declared with adopt: {ref}",
    Why.REPLICA_NOT_FOUND: (
        "declared in replicas: the key has no replica in {region}; ReplicateKey counts "
        "against that Region's CreateKey quota"
    ),
    Why.REPLICA_UNDECLARED: "a live replica in {region} that the manifests no longer declare",
    Why.PRIMARY_REGION_MOVES: (
        "the manifest's region moves from {old} to {new}, which holds a replica: that replica "
        "becomes the primary, and the old primary a replica"
    ),
    Why.DUPLICATE_KEYS: (
        "other live keys carry this stack and name ({released}), as when two applies race: "
        "{kept_id} is kept ({kept_because}); the others are released — their ownership tags "
        "removed, tagged kmsplan:duplicate-of with the kept key's id — and never deleted"
    ),
    Why.NOTE: "{text}",
}

_SEPARATOR = "; "


@dataclass(frozen=True, slots=True)
class ReasonPart:
    why: Why
    params: tuple[tuple[str, str], ...] = ()

    @property
    def words(self) -> str:
        return WORDS[self.why].format(**dict(self.params))


def because(why: Why, **params: object) -> ReasonPart:
    """One part of a reason: `why`, with the parameters its words name."""
    return ReasonPart(why, tuple(sorted((name, str(value)) for name, value in params.items())))


class Reason(str):
    """Why a change is in the plan: its words, made from `parts`."""

    parts: tuple[ReasonPart, ...]

    def __new__(cls, parts: Iterable[ReasonPart] = ()) -> Reason:
        given: object = parts
        if isinstance(given, str):
            raise TypeError("Reason(parts): use Reason.parse(text) for words")
        parts = tuple(parts)
        reason = super().__new__(cls, _SEPARATOR.join(part.words for part in parts))
        reason.parts = parts
        return reason

    def __reduce__(self) -> tuple[type[Reason], tuple[tuple[ReasonPart, ...]]]:
        return (Reason, (self.parts,))  # copy and pickle: rebuild from the parts

    @classmethod
    def of(cls, why: Why, **params: object) -> Reason:
        return cls((because(why, **params),))

    @property
    def codes(self) -> tuple[Why, ...]:
        return tuple(part.why for part in self.parts)

    @classmethod
    def parse(cls, text: str) -> Reason:
        """The reason whose words are `text` (a saved plan read back). Text that no
        template matches stays whole, as one `Why.NOTE`."""
        if isinstance(text, Reason):
            return text
        if not text:
            return cls()
        segments = text.split(_SEPARATOR)
        parts = _parse_segments(tuple(segments))
        if parts is None or _SEPARATOR.join(p.words for p in parts) != text:
            return cls((because(Why.NOTE, text=text),))
        return cls(parts)


NO_REASON = Reason()


@cache
def _pattern(why: Why) -> re.Pattern[str]:
    pieces = re.split(r"\{(\w+)\}", WORDS[why])
    regex = "".join(
        re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>.+?)" for i, piece in enumerate(pieces)
    )
    return re.compile(regex)


@cache
def _most_specific_first() -> tuple[Why, ...]:
    """Templates with more fixed words first: "moves from key X, outside stack S to Y" must
    not read as "moves from {old} to {new}"."""
    literal = {why: len(re.sub(r"\{\w+\}", "", WORDS[why])) for why in Why if why is not Why.NOTE}
    return tuple(sorted(literal, key=lambda why: -literal[why]))


def _parse_one(text: str) -> ReasonPart | None:
    for why in _most_specific_first():
        match = _pattern(why).fullmatch(text)
        if match is not None:
            return because(why, **match.groupdict())
    return None


def _parse_segments(segments: tuple[str, ...]) -> tuple[ReasonPart, ...] | None:
    """Group the "; "-separated segments into parts, each matching a template (a template's
    own words may hold "; ", so a part can span several segments)."""
    if not segments:
        return ()
    for end in range(1, len(segments) + 1):
        part = _parse_one(_SEPARATOR.join(segments[:end]))
        if part is None:
            continue
        rest = _parse_segments(segments[end:])
        if rest is not None:
            return (part, *rest)
    return None
