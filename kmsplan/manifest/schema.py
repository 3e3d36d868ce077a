"""Checking one manifest document against `schemas/manifest.schema.json`.

jsonschema finds the problems; this module says them the kmsplan way: at the line and column
of the offending node, with the document path, what is wrong and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jsonschema

from kmsplan.errors import Diagnostic
from kmsplan.manifest.source import DocPath, Document

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json"

# What `adopt:` may name: an alias name, a key id or a key ARN.
ADOPT_PATTERN = (
    "^(alias/[A-Za-z0-9/_-]+|(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/)?"
    "(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))$"
)

# Human wording for the schema's patterns.
PATTERN_TEXT = {
    "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$": (
        "1-64 letters, digits, '_' or '-', starting with a letter or digit"
    ),
    "^[0-9]{12}$": "12 digits, in quotes",
    "^[a-z]{2}(-[a-z]+)+-[0-9]+$": "a Region name such as eu-west-1",
    (
        "^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*'()/-]*)?"
        "|dynamodb://[A-Za-z0-9_.-]{3,255})$"
    ): "s3://BUCKET/PREFIX or dynamodb://TABLE",
    "^alias/[A-Za-z0-9/_-]+$": "'alias/' followed by letters, digits, '/', '_' or '-'",
    "^[a-zA-Z0-9:/_-]{1,248}$": "1-248 letters, digits, ':', '/', '_' or '-'",
    "^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$": (
        "an IAM role ARN such as arn:aws:iam::123456789012:role/kmsplan-apply"
    ),
    "^[A-Za-z0-9+=,.@:/_-]{2,1224}$": ("2-1224 letters, digits or any of + = , . @ : / _ -"),
    "^[A-Za-z0-9+=,.@_-]{2,64}$": "2-64 letters, digits or any of + = , . @ _ -",
    ADOPT_PATTERN: (
        "a key id (1234abcd-12ab-34cd-56ef-1234567890ab or mrk-...), a key ARN "
        "(arn:aws:kms:REGION:ACCOUNT:key/ID) or an alias name (alias/NAME)"
    ),
}


@functools.cache
def manifest_schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


@functools.cache
def _validator() -> Any:
    return jsonschema.Draft202012Validator(manifest_schema())


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaProblem:
    path: DocPath  # the offending node (for a bad mapping key: the key's own path)
    diagnostic: Diagnostic


def kind_of(value: Any) -> str:
    if value is None:
        return "null (no value)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_TEXT = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def show(value: Any) -> str:
    """A value as JSON, shortened for messages."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_of(options: Iterable[Any], given: Any = None) -> str:
    names = [str(o) for o in options]
    hint = ""
    if isinstance(given, str):
        lowered = {n.lower(): n for n in names}
        close = difflib.get_close_matches(given.lower(), list(lowered), n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean {lowered[close[0]]}?"
    return "one of: " + ", ".join(names) + hint


def _at_least(count: int, unit: str) -> str:
    # The schema's minimums are all 1, where "must not be empty" says everything.
    return "" if count == 1 else f"at least {count} {unit}s"


def _problems(doc: Document, error: Any) -> list[SchemaProblem]:
    path: DocPath = tuple(error.absolute_path)
    keyword = error.validator
    instance = error.instance
    schema = error.schema
    out: list[SchemaProblem] = []

    def add(at: DocPath, message: str, allowed: str = "", *, at_key: bool = False) -> None:
        out.append(
            SchemaProblem(path=at, diagnostic=doc.diagnostic(at, message, allowed, at_key=at_key))
        )

    if "propertyNames" in error.relative_schema_path:
        # The instance is the offending property name of the mapping at `path`.
        name = str(instance)
        at = (*path, name)
        if keyword == "pattern":
            add(
                at,
                f'"{name}" is not a valid name',
                PATTERN_TEXT.get(schema["pattern"], ""),
                at_key=True,
            )
        elif keyword == "maxLength":
            add(
                at,
                f"name is {len(name)} characters long",
                f"at most {schema['maxLength']}",
                at_key=True,
            )
        elif keyword == "minLength":
            add(at, "name is empty", "at least 1 character", at_key=True)
        else:
            add(at, error.message, at_key=True)
        return out

    if keyword == "additionalProperties" and schema.get("additionalProperties") is False:
        known = list(schema.get("properties", {}))
        for extra in instance:
            if extra in known:
                continue
            add((*path, extra), f'unknown field "{extra}"', _one_of(known, extra), at_key=True)
    elif keyword == "required":
        for missing in error.validator_value:
            if missing not in instance:
                add(path, f'missing required field "{missing}"')
    elif keyword == "type":
        expected = error.validator_value
        expected_list = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(_TYPE_TEXT.get(str(t), str(t)) for t in expected_list)
        allowed = ""
        if "string" in expected_list and isinstance(instance, (bool, int, float)):
            allowed = "write it in quotes"
        add(path, f"expected {wanted}, got {kind_of(instance)}", allowed)
    elif keyword == "enum":
        add(
            path, f"{show(instance)} is not a valid value", _one_of(error.validator_value, instance)
        )
    elif keyword == "const":
        add(path, f"{show(instance)} is not supported", f"{show(error.validator_value)}")
    elif keyword in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            allowed = f"{low} to {high}"
        elif low is not None:
            allowed = f"at least {low}"
        else:
            allowed = f"at most {high}"
        add(path, f"{instance} is out of range", allowed)
    elif keyword == "pattern":
        add(
            path,
            f"{show(instance)} is not valid",
            PATTERN_TEXT.get(error.validator_value, f"matching {error.validator_value}"),
        )
    elif keyword == "minLength":
        add(path, "must not be empty", _at_least(error.validator_value, "character"))
    elif keyword == "maxLength":
        add(path, f"is {len(instance)} characters long", f"at most {error.validator_value}")
    elif keyword == "minItems":
        add(path, "must not be empty", _at_least(error.validator_value, "item"))
    elif keyword == "maxItems":
        add(path, f"has {len(instance)} items", f"at most {error.validator_value}")
    elif keyword == "uniqueItems":
        seen: list[Any] = []
        for index, item in enumerate(instance):
            if item in seen:
                add((*path, index), f"{show(item)} is listed twice", "each item once")
            else:
                seen.append(item)
    elif keyword == "minProperties":
        add(path, "must not be empty", _at_least(error.validator_value, "entry"))
    elif keyword == "maxProperties":
        add(path, f"has {len(instance)} entries", f"at most {error.validator_value}")
    else:
        add(path, error.message)
    return out


def check_document(doc: Document) -> list[SchemaProblem]:
    """Every schema problem of one manifest document, in document order."""
    if _surely_valid(doc.value):
        return []
    problems: list[SchemaProblem] = []
    for error in _validator().iter_errors(doc.value):
        problems.extend(_problems(doc, error))
    unique: dict[tuple[Any, ...], SchemaProblem] = {}
    for p in problems:
        d = p.diagnostic
        unique.setdefault((d.line, d.column, d.path, d.message), p)
    return sorted(
        unique.values(),
        key=lambda p: (
            p.diagnostic.line,
            p.diagnostic.column,
            p.diagnostic.path,
            p.diagnostic.message,
        ),
    )


def under(path: DocPath, prefixes: Sequence[DocPath]) -> bool:
    return any(path[: len(p)] == p for p in prefixes)


# ---- the quick check of the common case --------------------------------------------------
#
# jsonschema costs ~0.25 ms per key block, most of the load time of a large manifest. Nearly
# every document is valid, so a document first meets `_surely_valid`: the same schema compiled
# into plain Python checks, each at least as strict as jsonschema's (a float is never taken
# for an integer, enums and uniqueness are judged on strings only, ...). When it says valid,
# jsonschema would too; when it says anything else, jsonschema decides and words the problems.

Check = Callable[[Any], bool]

# Keywords that only describe; they never make a document invalid.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"}
)
_TYPE_CHECKS: dict[str, Check] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) is int or type(v) is float,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


class _Uncompilable(Exception):
    """The schema uses a keyword the quick check does not know; jsonschema does it all."""


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda value: True
    if len(checks) == 1:
        return checks[0]
    return lambda value: all(check(value) for check in checks)


def _of_type(names: list[str]) -> Check:
    checks = [_TYPE_CHECKS[name] for name in names]
    return lambda value: any(check(value) for check in checks)


def _properties(props: dict[str, Check]) -> Check:
    return lambda value: (
        type(value) is not dict
        or all(check(value[name]) for name, check in props.items() if name in value)
    )


def _no_other_properties(known: frozenset[str]) -> Check:
    return lambda value: type(value) is not dict or known.issuperset(value)


def _other_properties(known: frozenset[str], extra: Check) -> Check:
    return lambda value: (
        type(value) is not dict
        or all(extra(item) for name, item in value.items() if name not in known)
    )


def _has_all(needed: tuple[str, ...]) -> Check:
    return lambda value: type(value) is not dict or all(name in value for name in needed)


def _property_names(check: Check) -> Check:
    return lambda value: type(value) is not dict or all(check(name) for name in value)


def _one_of_values(options: list[Any]) -> Check:
    if not all(type(o) is str or type(o) is int for o in options):
        raise _Uncompilable("enum")
    # Type and value both: jsonschema would take 1.0 for 1, this does not.
    allowed = frozenset((type(o), o) for o in options)
    return lambda value: (
        (type(value) is str or type(value) is int) and ((type(value), value) in allowed)
    )


def _matching(pattern: str) -> Check:
    search = re.compile(pattern).search  # jsonschema searches, too
    return lambda value: type(value) is not str or search(value) is not None


def _sized(kind: type, low: int, high: int | None) -> Check:
    def check(value: Any) -> bool:
        if type(value) is not kind:
            return True
        size = len(cast("Sized", value))
        return size >= low and (high is None or size <= high)

    return check


def _at_least_number(bound: float) -> Check:
    return lambda value: not _is_number(value) or value >= bound


def _at_most_number(bound: float) -> Check:
    return lambda value: not _is_number(value) or value <= bound


def _each_item(check: Check) -> Check:
    return lambda value: type(value) is not list or all(check(item) for item in value)


def _unique_strings(value: Any) -> bool:
    # Judged on strings only; jsonschema's equality of other values is subtler.
    return type(value) is not list or (
        all(type(item) is str for item in value) and len(set(value)) == len(value)
    )


def _if_required(needed: tuple[str, ...], then: Check, otherwise: Check) -> Check:
    return lambda value: (
        then(value)
        if type(value) is not dict or all(n in value for n in needed)
        else otherwise(value)
    )


def _late(slot: list[Check]) -> Check:
    return lambda value: slot[0](value)


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.compiled: dict[str, Check] = {}

    def ref(self, ref: str) -> Check:
        name = ref.removeprefix("#/$defs/")
        if name == ref or "/" in name:
            raise _Uncompilable(ref)
        if ref not in self.compiled:
            slot: list[Check] = []
            self.compiled[ref] = _late(slot)  # in case the schema refers to itself
            slot.append(self.schema(self.root["$defs"][name]))
        return self.compiled[ref]

    def schema(self, schema: dict[str, Any]) -> Check:
        checks = [
            self.keyword(keyword, arg, schema)
            for keyword, arg in schema.items()
            if keyword not in _ANNOTATIONS and keyword not in ("then", "else")
        ]
        return _all(checks)

    def keyword(self, keyword: str, arg: Any, schema: dict[str, Any]) -> Check:
        if keyword == "type":
            return _of_type(arg if isinstance(arg, list) else [arg])
        if keyword == "properties":
            return _properties({name: self.schema(sub) for name, sub in arg.items()})
        if keyword == "additionalProperties":
            if "patternProperties" in schema:
                raise _Uncompilable(keyword)
            known = frozenset(schema.get("properties", {}))
            if arg is False:
                return _no_other_properties(known)
            return _other_properties(known, self.schema(arg))
        if keyword == "required":
            return _has_all(tuple(arg))
        if keyword == "propertyNames":
            return _property_names(self.schema(arg))
        if keyword in ("enum", "const"):
            return _one_of_values(arg if keyword == "enum" else [arg])
        if keyword == "pattern":
            return _matching(arg)
        if keyword in (
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
            "minProperties",
            "maxProperties",
        ):
            kind: type = (
                str if keyword.endswith("Length") else list if keyword.endswith("Items") else dict
            )
            return _sized(kind, arg, None) if keyword.startswith("min") else _sized(kind, 0, arg)
        if keyword == "minimum":
            return _at_least_number(arg)
        if keyword == "maximum":
            return _at_most_number(arg)
        if keyword == "items" and isinstance(arg, dict):
            return _each_item(self.schema(arg))
        if keyword == "uniqueItems" and arg is True:
            return _unique_strings
        if keyword == "$ref":
            return self.ref(arg)
        if keyword == "if" and isinstance(arg, dict) and set(arg) - _ANNOTATIONS == {"required"}:
            # The condition must be judged exactly (a wrong "no" would pick the wrong branch),
            # so only a list of required fields is taken.
            return _if_required(
                tuple(arg["required"]),
                self.schema(schema.get("then", {})),
                self.schema(schema.get("else", {})),
            )
        raise _Uncompilable(keyword)


@functools.cache
def _quick_check() -> Check | None:
    try:
        return _Compiler(manifest_schema()).schema(manifest_schema())
    except (_Uncompilable, KeyError, TypeError, re.error):
        return None


def _surely_valid(value: Any) -> bool:
    """True only if jsonschema would find no problem in `value` (False: ask jsonschema)."""
    check = _quick_check()
    return check is not None and check(value)
