"""KMS rules the schema cannot express, checked on each key after the defaults are merged,
and the building of the model's `Key` from a key block that passed them.

Each rule comes from the KMS API reference (see `kmsplan.kmsspec`). Every problem is reported
at the node that causes it; a key with problems still gets all its rules checked.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmsplan import kmsspec
from kmsplan.errors import Diagnostic
from kmsplan.manifest import policyshape
from kmsplan.manifest.schema import kind_of, show
from kmsplan.manifest.source import (
    DocPath,
    Document,
    PathPart,
    SourceError,
    Unreadable,
    decode_text,
    parse_json,
    parse_yaml,
    read_bytes,
    render_path,
    render_path_under,
    tree_root,
)
from kmsplan.manifest.variables import VariableProblem, substitute
from kmsplan.model import (
    DEFAULT_WINDOW_DAYS,
    Deletion,
    Grant,
    GrantConstraints,
    Key,
    LintSuppression,
    Location,
    Replica,
    Rotation,
)

_GRANT_PRINCIPAL = re.compile(kmsspec.GRANT_PRINCIPAL_PATTERN, re.ASCII)
# Stand-ins for plan-time variables when measuring and pattern-checking at load time.
PLACEHOLDER_ACCOUNT_ID = "123456789012"
PLACEHOLDER_REGION = "ap-southeast-2"


@dataclass(slots=True)
class Reporter:
    """Collects diagnostics; every check reports through it."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def add(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def at(
        self,
        doc: Document,
        path: DocPath,
        message: str,
        allowed: str = "",
        *,
        at_key: bool = False,
        display_path: DocPath | None = None,
    ) -> None:
        self.add(doc.diagnostic(path, message, allowed, at_key=at_key, display_path=display_path))


@dataclass(slots=True)
class PolicyFiles:
    """Policy files read once each, however many keys name them."""

    reporter: Reporter
    # Manifest file (as shown) -> the folder its policy files must stay inside (a manifest
    # not listed: see `tree_root`).
    roots: Mapping[str, Path] = field(default_factory=dict)
    cache: dict[tuple[Path, Path], Document | None] = field(default_factory=dict)

    def load(
        self, manifest: Document, path: DocPath, relative: str, *, shown_as: DocPath
    ) -> Document | None:
        """The policy file `relative` (named at `path` of `manifest`) or None if unusable.
        Problems inside the file are shown under the document path `shown_as`; a path that
        is not a readable file inside the manifests' tree is reported at `path`."""
        display = os.path.join(os.path.dirname(manifest.file), relative)
        fs_path = Path(display)
        root = self.roots.get(manifest.file) or tree_root(manifest.file)
        resolved = (Path(os.path.realpath(fs_path)), root)
        if resolved in self.cache:
            return self.cache[resolved]
        try:
            data = read_bytes(fs_path, root=root)
        except Unreadable as exc:
            self.reporter.at(
                manifest,
                path,
                f'policy file "{relative}" {exc.reason}',
                exc.allowed or "a JSON or YAML file, relative to this manifest",
            )
            self.cache[resolved] = None
            return None
        doc: Document | None = None
        try:
            text = decode_text(display, fs_path, data, kind="policy file")
            if fs_path.suffix.lower() == ".json":
                doc, problems = parse_json(display, text)
            else:
                doc, problems = parse_yaml(display, text, kind="policy file")
            prefix = render_path(shown_as)
            for p in problems:
                joined = prefix + ("" if p.path.startswith("[") or not p.path else ".") + p.path
                self.reporter.add(dataclasses.replace(p, path=joined))
            if doc.value is None:
                self.reporter.add(
                    Diagnostic(
                        file=display,
                        line=1,
                        column=1,
                        path="",
                        message="policy file is empty",
                        allowed="a JSON object: a key policy document",
                    )
                )
                doc = None
            elif not isinstance(doc.value, dict):
                self.reporter.at(
                    doc,
                    (),
                    f"policy file holds {kind_of(doc.value)}",
                    "a JSON object: a key policy document",
                )
                doc = None
        except SourceError as exc:
            self.reporter.add(exc.diagnostic)
            doc = None
        self.cache[resolved] = doc
        return doc


@dataclass(frozen=True, slots=True, kw_only=True)
class StackContext:
    name: str
    region: str | None
    defaults: Mapping[str, Any]  # the validated `defaults` block, {} if none
    # Where each node of defaults.<field> was written: field -> [(path, location)].
    defaults_locations: Mapping[str, list[tuple[DocPath, Location]]] = field(default_factory=dict)


def _placeholders(region: str | None) -> dict[str, str]:
    return {"account_id": PLACEHOLDER_ACCOUNT_ID, "region": region or PLACEHOLDER_REGION}


def _tag_problems(key: str, value: str) -> list[tuple[bool, str, str]]:
    """(on_value, message, allowed) for one tag."""
    out: list[tuple[bool, str, str]] = []
    lowered = key.lower()
    for prefix in kmsspec.RESERVED_TAG_PREFIXES:
        if lowered.startswith(prefix):
            out.append(
                (
                    False,
                    f'tag key "{key}" uses the reserved prefix "{prefix}"',
                    "tag keys not starting with aws: or kmsplan:",
                )
            )
    allowed_chars = "letters, digits, spaces and _ . : / = + - @"
    bad = _bad_tag_character(key)
    if bad is not None:
        out.append((False, f"tag key contains the character {json.dumps(bad)}", allowed_chars))
    bad = _bad_tag_character(value)
    if bad is not None:
        out.append((True, f"tag value contains the character {json.dumps(bad)}", allowed_chars))
    return out


# Plain ASCII tag text, all of it allowed: most tags, checked without a look at each character.
_ASCII_TAG_TEXT = re.compile(r"[A-Za-z0-9 _.:/=+@-]*")


def _bad_tag_character(text: str) -> str | None:
    if _ASCII_TAG_TEXT.fullmatch(text):
        return None
    return next((c for c in text if not kmsspec.is_tag_character(c)), None)


def check_tags(doc: Document, path: DocPath, tags: Mapping[str, str], reporter: Reporter) -> None:
    for key, value in tags.items():
        for on_value, message, allowed in _tag_problems(key, value):
            reporter.at(doc, (*path, key), message, allowed, at_key=not on_value)


class KeyBuilder:
    """Checks one key block (already schema-valid) and builds its `Key`."""

    def __init__(
        self,
        *,
        doc: Document,
        name: str,
        stack: StackContext,
        reporter: Reporter,
        policy_files: PolicyFiles,
        schema_ok: Callable[[DocPath, bool], bool],
    ) -> None:
        self.doc = doc
        # Parts with schema problems were reported already and are not checked again (their
        # values may have any type); everything else still is.
        self._schema_ok = schema_ok
        self.name = name
        self.stack = stack
        self.reporter = reporter
        self.policy_files = policy_files
        self.path: DocPath = ("keys", name)
        self._rendered = render_path(self.path)
        self.block: dict[str, Any] = doc.value["keys"][name]
        self.source_map: dict[str, Location] = {}

    def _ok(self, *rel: PathPart) -> bool:
        """No schema problem at, above or below this part of the key."""
        return self._schema_ok((*self.path, *rel), False)

    def _items(self, name: str) -> list[tuple[int, Any]]:
        """(index, item) of the list field `name` whose items have no schema problem."""
        items = self.block.get(name)
        if not isinstance(items, list) or not self._schema_ok((*self.path, name), True):
            return []
        return [(i, item) for i, item in enumerate(items) if self._ok(name, i)]

    def _part(self, name: str, empty: Any) -> Any:
        """The key's own `name` field, or `empty` if absent or not schema-valid."""
        return self.block.get(name, empty) if self._ok(name) else empty

    def _report(
        self, rel: DocPath, message: str, allowed: str = "", *, at_key: bool = False
    ) -> None:
        self.reporter.at(self.doc, (*self.path, *rel), message, allowed, at_key=at_key)

    # ---- the parts ----

    def _spec_usage(self) -> tuple[str, str, bool]:
        """Spec, usage, and whether both are known well enough to check what depends on them."""
        if not (self._ok("spec") and self._ok("usage")):
            return kmsspec.SYMMETRIC_DEFAULT, kmsspec.ENCRYPT_DECRYPT, False
        spec: str = self.block.get("spec", kmsspec.SYMMETRIC_DEFAULT)
        valid = kmsspec.valid_usages(spec)
        usage = self.block.get("usage")
        if usage is None:
            implied = kmsspec.implied_usage(spec)
            if implied is None:
                self._report(
                    ("spec",), f"keys of spec {spec} need a usage", "usage: " + " or ".join(valid)
                )
                usage = valid[0]
            else:
                usage = implied
        elif usage not in valid:
            self._report(
                ("usage",),
                f"{usage} is not a valid usage for {spec} keys",
                "one of: " + ", ".join(valid),
            )
        if (
            spec in kmsspec.CHINA_ONLY_SPECS
            and self.stack.region is not None
            and not kmsspec.is_china_region(self.stack.region)
        ):
            self._report(
                ("spec",),
                f"{spec} keys exist only in the AWS China Regions, not in {self.stack.region}",
                "a cn- Region, or another spec",
            )
        return spec, usage, True

    def _rotation(self, spec: str, usage: str, known: bool) -> Rotation:
        own: dict[str, Any] = self._part("rotation", {})
        rotatable = kmsspec.can_rotate(spec, usage)
        if known and own.get("enabled") is True and not rotatable:
            self._report(
                ("rotation", "enabled"),
                f"automatic rotation is not supported for {spec} {usage} keys",
                "rotation only on symmetric encryption keys (SYMMETRIC_DEFAULT, "
                "ENCRYPT_DECRYPT); set enabled: false",
            )
        # Default rotation applies only where KMS can rotate: a stack-wide "rotate everything"
        # must not make every signing or HMAC key invalid.
        merged = {**self.stack.defaults.get("rotation", {}), **own} if rotatable else own
        if rotatable:
            self._inherit("rotation", own)
        return Rotation(
            enabled=bool(merged.get("enabled", False)), period_days=merged.get("period_days")
        )

    def _deletion(self) -> Deletion:
        own: dict[str, Any] = self._part("deletion", {})
        merged = {**self.stack.defaults.get("deletion", {}), **own}
        self._inherit("deletion", own)
        return Deletion(
            protected=bool(merged.get("protected", True)),
            window_days=int(merged.get("window_days", DEFAULT_WINDOW_DAYS)),
        )

    def _aliases(
        self, items: list[tuple[int, Any]], rel: DocPath = ("aliases",)
    ) -> tuple[str, ...]:
        aliases: list[str] = []
        for index, alias in items:
            aliases.append(alias)
            if alias.startswith(kmsspec.ALIAS_RESERVED_PREFIX):
                self._report(
                    (*rel, index),
                    f'"{alias}" uses the reserved prefix "{kmsspec.ALIAS_RESERVED_PREFIX}"',
                    "alias/aws/ is for AWS managed keys; pick another name",
                )
        return tuple(sorted(set(aliases)))

    def _tags(self) -> tuple[tuple[str, str], ...]:
        block_tags = self.block.get("tags")
        own: dict[str, str] = (
            {k: v for k, v in block_tags.items() if self._ok("tags", k)}
            if isinstance(block_tags, dict)
            else {}
        )
        check_tags(self.doc, (*self.path, "tags"), own, self.reporter)
        merged = {**self.stack.defaults.get("tags", {}), **own}
        self._inherit("tags", own)
        if len(merged) > kmsspec.TAGS_PER_KEY:
            where: DocPath = ("tags",) if "tags" in self.block else ()
            self._report(
                where,
                f"the key has {len(merged)} tags with the defaults merged in",
                f"at most {kmsspec.TAGS_PER_KEY}",
            )
        return tuple(sorted(merged.items()))

    def _policy(
        self, raw: Any = None, rel: DocPath = ("policy",), region: str | None = None
    ) -> dict[str, Any] | None:
        """The key's policy, or (given `raw`) a replica's at `rel` in `region`."""
        if rel == ("policy",):
            raw = self._part("policy", None)
        if raw is None:
            return None
        policy_path: DocPath = (*self.path, *rel)
        source, base = self.doc, policy_path
        if "file" in raw:
            loaded = self.policy_files.load(
                self.doc, (*policy_path, "file"), raw["file"], shown_as=policy_path
            )
            if loaded is None:
                return None
            source, base = loaded, ()
            for p, loc in loaded.values.items():
                self.source_map.setdefault(render_path_under(self._rendered, (*rel, *p)), loc)
            raw = loaded.value

        def report(at: DocPath, message: str, allowed: str, at_key: bool) -> None:
            # `at` is relative to the policy document; show it under keys.<name>.policy.
            self.reporter.at(
                source,
                (*base, *at),
                message,
                allowed,
                at_key=at_key,
                display_path=(*policy_path, *at),
            )

        problems: list[VariableProblem] = []
        policy = substitute(
            raw,
            {"stack": self.stack.name, "key": self.name},
            path=(),
            in_policy=True,
            problems=problems,
        )
        for problem in problems:
            report(problem.path, problem.message, problem.allowed, problem.in_key)
        policyshape.check_policy(
            policy, (), report, placeholders=_placeholders(region or self.stack.region)
        )
        return policy  # type: ignore[no-any-return]

    def _replicas(
        self,
        multi_region: bool,
        description: str,
        tags: tuple[tuple[str, str], ...],
        policy: dict[str, Any] | None,
    ) -> tuple[Replica, ...]:
        """The replicas, with the primary's description, tags and policy where they leave
        them out. Replicas exist only for multi-Region keys, and never in the key's Region."""
        block = self._part("replicas", {})
        if block and not multi_region:
            self._report(
                ("replicas",),
                "replicas need a multi-Region key, and this key is "
                "single-Region (multi_region is not true); a key cannot become "
                "multi-Region after it is created",
                "multi_region: true on a new key (a new logical name), or no replicas",
                at_key=True,
            )
            return ()
        replicas = []
        for region, raw in block.items():
            rel: DocPath = ("replicas", region)
            if not self._ok(*rel):
                continue
            if region == self.stack.region:
                self._report(
                    rel,
                    f"{region} is the stack's Region, where the primary key is",
                    "replicas in other Regions only",
                    at_key=True,
                )
            own_tags = raw.get("tags")
            replica_tags = tags
            if isinstance(own_tags, dict):
                check_tags(self.doc, (*self.path, *rel, "tags"), own_tags, self.reporter)
                merged = {**self.stack.defaults.get("tags", {}), **own_tags}
                replica_tags = tuple(sorted(merged.items()))
            own_policy = raw.get("policy")
            aliases = raw.get("aliases", [])
            replicas.append(
                Replica(
                    region=region,
                    description=raw.get("description", description),
                    enabled=raw.get("enabled", True),
                    aliases=self._aliases(list(enumerate(aliases)), (*rel, "aliases")),
                    tags=replica_tags,
                    policy=policy
                    if own_policy is None
                    else self._policy(own_policy, (*rel, "policy"), region),
                    location=self.doc.locate_key((*self.path, *rel)),
                )
            )
        return tuple(sorted(replicas, key=lambda r: r.region))

    def _grant(
        self,
        index: int,
        raw: dict[str, Any],
        spec: str,
        usage: str,
        known: bool,
        first_names: dict[str, int],
    ) -> Grant:
        rel: DocPath = ("grants", index)
        name: str = raw["name"]
        if name in first_names:
            loc = self.doc.locate((*self.path, "grants", first_names[name], "name"))
            self._report(
                (*rel, "name"),
                f'grant name "{name}" is used twice in this key (first at line {loc.line})',
                "a unique name per grant",
            )
        else:
            first_names[name] = index
        values = {"stack": self.stack.name, "key": self.name}
        placeholders = _placeholders(self.stack.region)

        def text(field_name: str) -> str | None:
            value = raw.get(field_name)
            if value is None:
                return None
            problems: list[VariableProblem] = []
            out: str = substitute(
                value, values, path=(*rel, field_name), in_policy=False, problems=problems
            )
            for p in problems:
                self._report(p.path, p.message, p.allowed, at_key=p.in_key)
            if not problems:
                sample = substitute(out, placeholders, path=(), in_policy=False, problems=[])
                if len(sample) > kmsspec.GRANT_PRINCIPAL_MAX_CHARS or not _GRANT_PRINCIPAL.match(
                    sample
                ):
                    self._report(
                        (*rel, field_name),
                        f"{show(out)} is not a valid principal",
                        f"1-{kmsspec.GRANT_PRINCIPAL_MAX_CHARS} "
                        "letters, digits and _ + = , . @ : / -",
                    )
            return out

        grantee = text("grantee") or ""
        retiring = text("retiring_principal")
        operations: list[str] = raw["operations"]
        allowed_ops = kmsspec.grant_operations(spec, usage)
        for op_index, op in enumerate(operations):
            if known and op not in allowed_ops:
                self._report(
                    (*rel, "operations", op_index),
                    f"{op} is not allowed on {spec} {usage} keys",
                    "one of: " + ", ".join(sorted(allowed_ops)),
                )
        constraints = self._constraints(rel, raw.get("constraints"), spec, usage, known, values)
        return Grant(
            name=name,
            grantee=grantee,
            operations=tuple(sorted(operations)),
            retiring_principal=retiring,
            constraints=constraints,
            location=self.doc.locate((*self.path, *rel)),
        )

    def _constraints(
        self,
        rel: DocPath,
        raw: dict[str, Any] | None,
        spec: str,
        usage: str,
        known: bool,
        values: Mapping[str, str],
    ) -> GrantConstraints | None:
        if raw is None:
            return None
        if known and not kmsspec.grant_constraints_allowed(spec, usage):
            self._report(
                (*rel, "constraints"),
                f"encryption context constraints are not supported on {spec} {usage} keys",
                "constraints only on symmetric encryption keys",
            )
        if len(raw) > 1:
            self._report(
                (*rel, "constraints"),
                "both encryption_context_subset and encryption_context_equals are given",
                "one of the two",
            )

        def pairs(kind: str) -> tuple[tuple[str, str], ...] | None:
            context = raw.get(kind)
            if context is None:
                return None
            problems: list[VariableProblem] = []
            filled = substitute(
                context,
                values,
                path=(*rel, "constraints", kind),
                in_policy=False,
                problems=problems,
            )
            for p in problems:
                self._report(p.path, p.message, p.allowed, at_key=p.in_key)
            return tuple(sorted(filled.items()))

        return GrantConstraints(
            encryption_context_subset=pairs("encryption_context_subset"),
            encryption_context_equals=pairs("encryption_context_equals"),
        )

    def _inherit(self, field_name: str, own: Mapping[str, Any]) -> None:
        """Map the defaults this key inherits to the key's own paths, for lint locations."""
        if field_name not in self.stack.defaults:
            return
        for p, loc in self.stack.defaults_locations.get(field_name, []):
            if len(p) >= 3 and p[2] in own:
                continue
            self.source_map.setdefault(render_path_under(self._rendered, p[1:]), loc)

    # ---- the whole key ----

    def build(self, located: list[tuple[DocPath, Location]]) -> Key:
        """The key; `located` lists where each node of the key block was written."""
        source_map = self.source_map
        for p, loc in located:
            source_map[render_path_under(self._rendered, p[2:])] = loc
        spec, usage, known = self._spec_usage()
        policy = self._policy()
        first_names: dict[str, int] = {}
        grants = [
            self._grant(i, g, spec, usage, known, first_names) for i, g in self._items("grants")
        ]
        lint = self._part("lint", {}).get("disable", [])
        description: str = self._part("description", "")
        multi_region: bool = self._part("multi_region", False)
        tags = self._tags()
        key = Key(
            name=self.name,
            description=description,
            spec=spec,
            usage=usage,
            multi_region=multi_region,
            enabled=self._part("enabled", True),
            aliases=self._aliases(self._items("aliases")),
            rotation=self._rotation(spec, usage, known),
            deletion=self._deletion(),
            tags=tags,
            policy=policy,
            grants=tuple(sorted(grants, key=lambda g: g.name)),
            replicas=self._replicas(multi_region, description, tags, policy),
            bypass_policy_lockout_safety_check=self._part(
                "bypass_policy_lockout_safety_check", False
            ),
            lint_disable=tuple(LintSuppression(rule=d["rule"], reason=d["reason"]) for d in lint),
            adopt=self._part("adopt", None),
            location=self.doc.locate_key(self.path),
            source_map=self.source_map,
        )
        return key
