"""Checking one manifest document against `schemas/manifest.schema.json`.

jsonschema finds the problems; this module says them the kmsplan way: at the line and column
of the offending node, with the document path, what is wrong and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from kmsplan.errors import Diagnostic
from kmsplan.manifest.source import DocPath, Document

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json"

# Human wording for the schema's patterns.
PATTERN_TEXT = {
    "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$": (
        "1-64 letters, digits, '_' or '-', starting with a letter or digit"
    ),
    "^[0-9]{12}$": "12 digits, in quotes",
    "^[a-z]{2}(-[a-z]+)+-[0-9]+$": "a Region name such as eu-west-1",
    "^alias/[A-Za-z0-9/_-]+$": "'alias/' followed by letters, digits, '/', '_' or '-'",
    "^[a-zA-Z0-9:/_-]{1,248}$": "1-248 letters, digits, ':', '/', '_' or '-'",
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
        out.append(SchemaProblem(path=at, diagnostic=doc.diagnostic(at, message, allowed,
                                                                     at_key=at_key)))

    if "propertyNames" in error.relative_schema_path:
        # The instance is the offending property name of the mapping at `path`.
        name = str(instance)
        at = (*path, name)
        if keyword == "pattern":
            add(at, f'"{name}" is not a valid name', PATTERN_TEXT.get(schema["pattern"], ""),
                at_key=True)
        elif keyword == "maxLength":
            add(at, f"name is {len(name)} characters long", f"at most {schema['maxLength']}",
                at_key=True)
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
        add(path, f"{show(instance)} is not a valid value", _one_of(error.validator_value,
                                                                     instance))
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
        add(path, f"{show(instance)} is not valid",
            PATTERN_TEXT.get(error.validator_value, f"matching {error.validator_value}"))
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
    problems: list[SchemaProblem] = []
    for error in _validator().iter_errors(doc.value):
        problems.extend(_problems(doc, error))
    unique: dict[tuple[Any, ...], SchemaProblem] = {}
    for p in problems:
        d = p.diagnostic
        unique.setdefault((d.line, d.column, d.path, d.message), p)
    return sorted(unique.values(), key=lambda p: (p.diagnostic.line, p.diagnostic.column,
                                                  p.diagnostic.path, p.diagnostic.message))


def under(path: DocPath, prefixes: Sequence[DocPath]) -> bool:
    return any(path[: len(p)] == p for p in prefixes)
