"""The manifest set `kmsplan import` writes: pure text from live keys, no I/O.

One manifest file with a block per key (``adopt:`` and everything the key is: description,
spec, usage, enabled, rotation, deletion, tags, aliases, kmsplan grants) and one policy file
per key, pretty-printed. Written so that a plan of it shows nothing but the adoptions: every
value is the live one. Grants made by others stay foreign and are listed as comments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from kmsplan import kmsspec
from kmsplan.model import GRANT_PREFIX, Grant, Key

SCHEMA_URL = "https://kmsplan.dev/schemas/manifest.schema.json"
POLICY_FOLDER = "policies"
_NAME_LIMIT = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedSet:
    """File name (relative to the output folder) -> text, manifest first."""

    files: Mapping[str, str]
    names: Mapping[str, str]  # key id -> logical name


def logical_name(key: Key) -> str:
    """A logical name from the key's first alias (``alias/legacy/orders`` -> ``legacy-orders``),
    else its id."""
    for alias in key.aliases:
        words = re.sub(r"[^A-Za-z0-9_-]+", "-", alias.removeprefix("alias/")).strip("-_")
        name = words[:_NAME_LIMIT].rstrip("-_")
        if name:
            return name
    return str(key.key_id)


def imported_set(keys: Sequence[Key], *, stack: str, account_id: str, region: str) -> ImportedSet:
    """The manifest and policy files for `keys` (live keys, as the reader reads them)."""
    names = _unique_names(keys)
    manifest = f"{stack}.yaml"
    lines = [
        f"# yaml-language-server: $schema={SCHEMA_URL}",
        "#",
        f"# Existing keys of account {account_id}, {region}, written by `kmsplan import`.",
        "# Review them, then `kmsplan plan` this folder: it should show only adoptions (the",
        "# kmsplan ownership tags); `kmsplan apply` makes the keys this stack's.",
        "version: 1",
        f"stack: {stack}",
        f'account: "{account_id}"',
        f"region: {region}",
        "",
        "keys:",
    ]
    header = list(lines)
    files: dict[str, str] = {}
    for key in sorted(keys, key=lambda k: names[str(k.key_id)]):
        name = names[str(key.key_id)]
        policy_file = f"{POLICY_FOLDER}/{name}.json" if key.policy is not None else None
        lines += _block(key, name, policy_file)
        if policy_file is not None and key.policy is not None:
            files[policy_file] = render_policy(key.policy)
    if not keys:
        lines[-1] = "keys: {}"
    elif lines[len(header)] == "":
        del lines[len(header)]  # no blank line right under keys:
    return ImportedSet(files={manifest: "\n".join(lines) + "\n", **files}, names=names)


def _unique_names(keys: Iterable[Key]) -> dict[str, str]:
    names: dict[str, str] = {}
    taken: set[str] = set()
    for key in sorted(keys, key=lambda k: (logical_name(k), str(k.key_id))):
        base = logical_name(key)
        name, n = base, 1
        while name in taken:
            n += 1
            suffix = f"-{n}"
            name = base[: _NAME_LIMIT - len(suffix)] + suffix
        taken.add(name)
        names[str(key.key_id)] = name
    return names


def _block(key: Key, name: str, policy_file: str | None) -> list[str]:
    out = [""]
    if key.state is not None and key.state.is_pending_deletion:
        out.append(
            f"  # Pending deletion{' until ' + key.deletion_date if key.deletion_date else ''}: "
            "adopting it cancels the deletion (it stays disabled)."
        )
    out += [
        f"  {name}:",
        f"    adopt: {key.key_id}",
        f"    description: {_scalar(key.description)}",
        f"    spec: {key.spec}",
        f"    usage: {key.usage}",
    ]
    if key.multi_region:
        out.append("    multi_region: true")
    out.append(f"    enabled: {_bool(key.enabled)}")
    if key.aliases:
        out.append("    aliases:")
        out += [f"      - {_scalar(a)}" for a in key.aliases]
    if kmsspec.can_rotate(key.spec, key.usage, key.origin):
        rotation = f"enabled: {_bool(key.rotation.enabled)}"
        if key.rotation.enabled and key.rotation.period_days is not None:
            rotation += f", period_days: {key.rotation.period_days}"
        out.append(f"    rotation: {{{rotation}}}")
    out.append(f"    deletion: {{protected: true, window_days: {key.deletion.window_days}}}")
    if key.tags:
        out.append("    tags:")
        out += [f"      {_scalar(k)}: {_scalar(v)}" for k, v in key.tags]
    if policy_file is not None:
        out.append(f"    policy: {{file: {policy_file}}}")
    else:
        out.append("    # The live key policy could not be read as JSON: it is left unmanaged.")
    if key.grants:
        out.append("    grants:")
        for g in key.grants:
            out += _grant(g)
    if key.foreign_grants:
        out.append(
            f"    # Grants not named {GRANT_PREFIX}<name> stay unmanaged: kmsplan lists them "
            "and never revokes them."
        )
        out += [f"    #   {_grant_comment(g)}" for g in key.foreign_grants]
    return out


def _grant(g: Grant) -> list[str]:
    out = [
        f"      - name: {_scalar(g.name)}",
        f"        grantee: {_scalar(g.grantee)}",
        f"        operations: [{', '.join(g.operations)}]",
    ]
    if g.retiring_principal:
        out.append(f"        retiring_principal: {_scalar(g.retiring_principal)}")
    context = _context(g)
    if context is not None:
        kind, pairs = context
        inner = ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in pairs)
        out.append(f"        constraints: {{{kind}: {{{inner}}}}}")
    return out


def _grant_comment(g: Grant) -> str:
    parts = [
        f"{g.name or '(unnamed)'} ({g.grant_id})" if g.grant_id else g.name or "(unnamed)",
        f"grantee {g.grantee}",
        f"operations {', '.join(g.operations)}",
    ]
    if g.retiring_principal:
        parts.append(f"retiring principal {g.retiring_principal}")
    context = _context(g)
    if context is not None:
        kind, pairs = context
        words = ", ".join(f"{k}={v}" for k, v in pairs)
        parts.append(f"{kind.replace('_', ' ')} {words}")
    return "; ".join(parts)


def _context(g: Grant) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    c = g.constraints
    if c is None:
        return None
    if c.encryption_context_subset is not None:
        return "encryption_context_subset", c.encryption_context_subset
    if c.encryption_context_equals is not None:
        return "encryption_context_equals", c.encryption_context_equals
    return None


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _scalar(text: str) -> str:
    """`text` as a YAML scalar: plain when YAML reads it back as the same string, else in
    double quotes (JSON's escaping is valid YAML)."""
    plain = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _./:@+=,-]*", text) is not None
    if plain and not text.endswith(" ") and ": " not in text and " #" not in text:
        try:
            if yaml.safe_load(text) == text:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def render_policy(policy: Mapping[str, Any]) -> str:
    """A policy as `kmsplan import` writes it: indented JSON, the live member order kept."""
    return json.dumps(policy, indent=2, ensure_ascii=False) + "\n"
