"""Loading a manifest set: files -> documents -> schema -> one stack -> KMS rules -> `Stack`.

Validation is complete before anything is returned: every problem in every file is collected
and raised together as one `ValidationFailed`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmsplan.errors import Diagnostic, ValidationFailed
from kmsplan.manifest.schema import SchemaProblem, check_document, kind_of
from kmsplan.manifest.semantics import (
    KeyBuilder,
    PolicyFiles,
    Reporter,
    StackContext,
    check_tags,
)
from kmsplan.manifest.source import (
    DocPath,
    Document,
    SourceError,
    file_diagnostic,
    parse_yaml,
    read_text,
    tree_root,
)
from kmsplan.model import DEFAULT_WINDOW_DAYS, Key, Location, Role, Stack

MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Manifest:
    doc: Document
    bad: tuple[DocPath, ...]  # paths with schema problems

    @property
    def value(self) -> dict[str, Any]:
        value: dict[str, Any] = self.doc.value
        return value

    def ok(self, path: DocPath, only_above: bool = False) -> bool:
        """No schema problem at or above `path`, nor (unless `only_above`) below it."""
        return not any(
            path[: len(b)] == b or (not only_above and b[: len(path)] == path) for b in self.bad
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestFile:
    display: str  # the path as the user gave it (or as joined from it)
    fs_path: Path  # the path to open
    root: Path  # the folder it, and the policy files it names, must stay inside


def manifest_files(paths: Sequence[str | Path], reporter: Reporter) -> list[ManifestFile]:
    """The files of a manifest set. In a folder, every *.yaml and *.yml entry is one, whatever
    it is: one that cannot be read is reported when it is read, never dropped (its keys would
    be planned for deletion)."""
    out: list[ManifestFile] = []
    seen: set[Path] = set()

    def add(display: str, fs_path: Path, root: Path) -> None:
        try:
            resolved = fs_path.resolve()
        except (OSError, RuntimeError):
            resolved = fs_path
        if resolved not in seen:
            seen.add(resolved)
            out.append(ManifestFile(display=display, fs_path=fs_path, root=root))

    for given in paths:
        display = os.fspath(given)
        fs_path = Path(display)
        if fs_path.is_dir():
            root = tree_root(fs_path)
            try:
                names = sorted(
                    entry.name
                    for entry in os.scandir(fs_path)
                    if entry.name.endswith(MANIFEST_SUFFIXES)
                )
            except OSError as exc:
                reporter.add(
                    file_diagnostic(
                        display, f"cannot read folder: {exc.strerror}", line=0, column=0
                    )
                )
                continue
            if not names:
                reporter.add(
                    file_diagnostic(
                        display,
                        "folder has no manifest files",
                        "*.yaml or *.yml files in the folder",
                        line=0,
                        column=0,
                    )
                )
            for name in names:
                add(os.path.join(display, name), fs_path / name, root)
        elif os.path.lexists(fs_path):
            add(display, fs_path, tree_root(fs_path))
        else:
            reporter.add(file_diagnostic(display, "no such file or folder", line=0, column=0))
    return out


def _read_manifest(file: ManifestFile, reporter: Reporter) -> _Manifest | None:
    display = file.display
    try:
        text = read_text(display, file.fs_path, root=file.root)
        doc, problems = parse_yaml(display, text)
    except SourceError as exc:
        reporter.add(exc.diagnostic)
        return None
    for problem in problems:
        reporter.add(problem)
    if doc.value is None:
        reporter.add(
            file_diagnostic(display, "manifest is empty", "a mapping with version, stack and keys")
        )
        return None
    if not isinstance(doc.value, dict):
        reporter.at(
            doc,
            (),
            f"a manifest must be a mapping, got {kind_of(doc.value)}",
            "a mapping with version, stack and keys",
        )
        return None
    schema_problems: list[SchemaProblem] = check_document(doc)
    for sp in schema_problems:
        reporter.add(sp.diagnostic)
    return _Manifest(doc=doc, bad=tuple(sp.path for sp in schema_problems))


def _agreed(manifests: list[_Manifest], field: str, reporter: Reporter) -> tuple[str | None, bool]:
    """The value every file that sets `field` gives it; False if the files disagree."""
    first: tuple[str, _Manifest] | None = None
    agreed = True
    for m in manifests:
        if field not in m.value or not m.ok((field,)):
            continue
        value = m.value[field]
        if first is None:
            first = (value, m)
        elif value != first[0]:
            agreed = False
            other = first[1].doc.file
            reporter.at(
                m.doc,
                (field,),
                f'"{value}" differs from "{first[0]}" in {other}',
                f"the same {field} in every file of a manifest set",
            )
    return (None if first is None else first[0]), agreed


def _defaults(manifests: list[_Manifest], reporter: Reporter) -> tuple[_Manifest | None, bool]:
    holder: _Manifest | None = None
    valid = True
    for m in manifests:
        if "defaults" not in m.value:
            continue
        if holder is not None:
            reporter.at(
                m.doc,
                ("defaults",),
                f"defaults are already given in {holder.doc.file}",
                "defaults in one file of a manifest set only",
                at_key=True,
            )
            continue
        holder = m
        valid = m.ok(("defaults",))
    if holder is not None and valid:
        check_tags(
            holder.doc, ("defaults", "tags"), holder.value["defaults"].get("tags", {}), reporter
        )
    return holder, valid


def load(paths: Sequence[str | Path]) -> Stack:
    """Load and validate a manifest set (files and folders) into one `Stack`.

    Raises ValidationFailed with every problem found. `${account_id}` and `${region}` stay in
    policies and grants until `resolve_variables` fills them.
    """
    if not paths:
        raise ValueError("no manifest paths given")
    reporter = Reporter()
    manifests, roots = _read_all(paths, reporter)
    stack = _build(manifests, roots, reporter)
    if reporter.diagnostics:
        raise ValidationFailed(_sorted(reporter.diagnostics, _file_order(manifests)))
    return stack


def load_stacks(paths: Sequence[str | Path]) -> tuple[Stack, ...]:
    """Load and validate the manifests at `paths` as one `Stack` per ``stack:`` value,
    sorted by name: a folder may hold several stacks, and one stack may span files and
    folders. Each stack is checked as `load` checks one; when the files name one stack,
    the result and every problem reported are those of `load`.

    Raises ValidationFailed with every problem of every stack.
    """
    if not paths:
        raise ValueError("no manifest paths given")
    reporter = Reporter()
    manifests, roots = _read_all(paths, reporter)
    groups: dict[str, list[_Manifest]] = {}
    for m in manifests:
        name = m.value.get("stack")
        # A file without a valid stack: has its schema problem reported already.
        if isinstance(name, str) and m.ok(("stack",)):
            groups.setdefault(name, []).append(m)
    if len(groups) > 1:
        stacks = tuple(_build(groups[name], roots, reporter) for name in sorted(groups))
    else:
        # One stack: every file belongs to it, as `load` has it, so a file whose stack: is
        # broken is still checked and the problems are those `load` reports.
        stacks = (_build(manifests, roots, reporter),)
    if reporter.diagnostics:
        raise ValidationFailed(_sorted(reporter.diagnostics, _file_order(manifests)))
    return stacks


def _read_all(
    paths: Sequence[str | Path], reporter: Reporter
) -> tuple[list[_Manifest], dict[str, Path]]:
    """Every manifest file at `paths`, read and schema-checked; and each file's root."""
    manifests: list[_Manifest] = []
    roots: dict[str, Path] = {}
    for file in manifest_files(paths, reporter):
        roots[file.display] = file.root
        m = _read_manifest(file, reporter)
        if m is not None:
            manifests.append(m)
    return manifests, roots


def _file_order(manifests: list[_Manifest]) -> dict[str, int]:
    return {m.doc.file: i for i, m in enumerate(manifests)}


def _build(manifests: list[_Manifest], roots: dict[str, Path], reporter: Reporter) -> Stack:
    """One stack from its manifests; problems go to `reporter` (the Stack is only
    meaningful when none were found)."""
    stack_name, stack_agreed = _agreed(manifests, "stack", reporter)
    account, _ = _agreed(manifests, "account", reporter)
    region, _ = _agreed(manifests, "region", reporter)
    role = _role(manifests, account, reporter)
    lock, _ = _agreed(manifests, "lock", reporter)
    defaults_holder, defaults_valid = _defaults(manifests, reporter)
    defaults: dict[str, Any] = (
        defaults_holder.value["defaults"] if defaults_holder is not None and defaults_valid else {}
    )

    # The KMS rules need a stack name (for ${stack}) and sound defaults to merge.
    can_check_keys = stack_name is not None and stack_agreed and defaults_valid
    context = StackContext(
        name=stack_name or "",
        region=region,
        defaults=defaults,
        defaults_locations={}
        if defaults_holder is None
        else _group(defaults_holder.doc, ("defaults",)),
    )
    policy_files = PolicyFiles(reporter=reporter, roots=roots)
    keys: list[Key] = []
    declared: dict[str, Document] = {}
    # (Region, alias) -> the first key to declare it; Region "" is the stack's own.
    alias_owner: dict[tuple[str, str], tuple[str, Document, DocPath]] = {}
    for m in manifests:
        block = m.value.get("keys")
        if not isinstance(block, dict):
            continue
        located = _group(m.doc, ("keys",))
        for name in block:
            if name in declared:
                first = declared[name]
                first_line = first.locate_key(("keys", name)).line
                reporter.at(
                    m.doc,
                    ("keys", name),
                    f'key "{name}" is already declared in {first.file} (line {first_line})',
                    "each logical name once per stack",
                    at_key=True,
                )
                continue
            declared[name] = m.doc
            if not can_check_keys or not isinstance(block[name], dict):
                continue
            key = KeyBuilder(
                doc=m.doc,
                name=name,
                stack=context,
                reporter=reporter,
                policy_files=policy_files,
                schema_ok=m.ok,
            ).build(located.get(name, []))
            keys.append(key)
            for alias_region, at, alias in _declared_aliases(name, block[name]):
                if not m.ok(at):
                    continue
                owned = alias_owner.get((alias_region, alias))
                if owned is not None and owned[0] != name:
                    owner, owner_doc, owner_at = owned
                    line = owner_doc.locate(owner_at).line
                    where = f" in {alias_region}" if alias_region else ""
                    reporter.at(
                        m.doc,
                        at,
                        f'alias "{alias}" is already used{where} by key '
                        f'"{owner}" ({owner_doc.file}:{line})',
                        "each alias on one key only",
                    )
                else:
                    alias_owner.setdefault((alias_region, alias), (name, m.doc, at))

    released = _released(manifests, declared, reporter)
    window = defaults.get("deletion", {}).get("window_days", DEFAULT_WINDOW_DAYS)
    return Stack(
        name=stack_name or "",
        account=account,
        region=region,
        role=role,
        lock=lock,
        keys=tuple(sorted(keys, key=lambda k: k.name)),
        default_window_days=int(window),
        files=tuple(m.doc.file for m in manifests),
        released=released,
    )


ROLE_FIELDS = ("role", "external_id", "session_name")


def _role(manifests: list[_Manifest], account: str | None, reporter: Reporter) -> Role | None:
    """The stack's ``role:`` with its ``external_id:`` and ``session_name:``; each agreed by
    every file that sets it, the latter two only with a role, the role in ``account:``."""
    values = {name: _agreed(manifests, name, reporter)[0] for name in ROLE_FIELDS}
    arn = values["role"]
    if arn is None:
        for name in ROLE_FIELDS[1:]:
            holder = _holder(manifests, name)
            if holder is not None:
                reporter.at(
                    holder.doc,
                    (name,),
                    f"{name} is only used with role:",
                    f"a role: in the stack's manifests, or no {name}:",
                    at_key=True,
                )
        return None
    role = Role(arn=arn, external_id=values["external_id"], session_name=values["session_name"])
    if account is not None and role.account != account:
        holder = _holder(manifests, "role")
        assert holder is not None
        reporter.at(
            holder.doc,
            ("role",),
            f"the role is in account {role.account}, but account: is {account}",
            f"a role in account {account}",
        )
    return role


def _holder(manifests: list[_Manifest], field: str) -> _Manifest | None:
    """The first manifest that sets `field` validly."""
    for m in manifests:
        if field in m.value and m.ok((field,)):
            return m
    return None


def _released(
    manifests: list[_Manifest], declared: dict[str, Document], reporter: Reporter
) -> tuple[str, ...]:
    """The names listed under ``released:`` in any file of the set. A name both declared and
    released is an error: kmsplan cannot both manage a key and stop managing it."""
    names: set[str] = set()
    for m in manifests:
        items = m.value.get("released")
        if not isinstance(items, list) or not m.ok(("released",), only_above=True):
            continue
        for index, name in enumerate(items):
            if not m.ok(("released", index)):
                continue
            if name in declared:
                where = declared[name]
                line = where.locate_key(("keys", name)).line
                reporter.at(
                    m.doc,
                    ("released", index),
                    f'key "{name}" is both released and declared ({where.file}:{line})',
                    "remove its block to release it, or remove it from released: to "
                    "keep managing it",
                )
            names.add(name)
    return tuple(sorted(names))


def _declared_aliases(name: str, block: dict[str, Any]) -> list[tuple[str, DocPath, Any]]:
    """(Region, path, alias) of each alias a key block declares: its own (Region "", the
    stack's) and its replicas' (aliases are regional: one name may serve a key per Region)."""
    found: list[tuple[str, DocPath, Any]] = []
    aliases = block.get("aliases", [])
    for index, alias in enumerate(aliases if isinstance(aliases, list) else []):
        found.append(("", ("keys", name, "aliases", index), alias))
    replicas = block.get("replicas")
    for region, replica in replicas.items() if isinstance(replicas, dict) else ():
        aliases = replica.get("aliases", []) if isinstance(replica, dict) else []
        for index, alias in enumerate(aliases if isinstance(aliases, list) else []):
            found.append((region, ("keys", name, "replicas", region, "aliases", index), alias))
    return found


def _group(doc: Document, prefix: DocPath) -> dict[str, list[tuple[DocPath, Location]]]:
    """The located nodes under `prefix`, grouped by the next path part (one pass per file)."""
    groups: dict[str, list[tuple[DocPath, Location]]] = {}
    depth = len(prefix)
    head = prefix[0]
    for path, loc in doc.values.items():
        # The first part compared alone first: it rules out most paths at the least cost.
        if len(path) > depth and path[0] == head and path[:depth] == prefix:
            part = str(path[depth])
            group = groups.get(part)
            if group is None:
                group = groups[part] = []
            group.append((path, loc))
    return groups


def _sorted(diagnostics: list[Diagnostic], order: dict[str, int]) -> list[Diagnostic]:
    """Files in the order they were loaded (policy files after all manifests), then by position."""
    unique = list(dict.fromkeys(diagnostics))
    return sorted(
        unique,
        key=lambda d: (order.get(d.file, len(order)), d.file, d.line, d.column, d.path, d.message),
    )
