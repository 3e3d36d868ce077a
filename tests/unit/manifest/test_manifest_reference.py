"""The manifest reference is generated from the schema, and the schema is complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema

from kmsplan.manifest.reference import render_reference
from kmsplan.manifest.schema import SCHEMA_PATH, manifest_schema

ROOT = Path(__file__).resolve().parents[3]


def test_checked_in_reference_is_current() -> None:
    current = (ROOT / "docs" / "manifest.md").read_text(encoding="utf-8")
    assert current == render_reference(), (
        "docs/manifest.md is stale: run python -m kmsplan.manifest.reference > docs/manifest.md"
    )


def test_schema_is_a_valid_2020_12_schema_loaded_through_the_package() -> None:
    assert SCHEMA_PATH.parent.name == "schemas" and SCHEMA_PATH.parent.parent.name == "kmsplan"
    assert SCHEMA_PATH.read_text(encoding="utf-8") == (
        ROOT / "schemas" / "manifest.schema.json"
    ).read_text(encoding="utf-8")
    schema = manifest_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def _objects(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            out.append((where, node))
        for k, v in node.items():
            out += _objects(v, f"{where}/{k}")
    return out


def test_every_property_has_a_description_and_typos_are_rejected() -> None:
    schema = manifest_schema()
    defs = schema["$defs"]
    for where, obj in _objects(schema):
        for name, prop in obj["properties"].items():
            target = defs[prop["$ref"].rsplit("/", 1)[-1]] if "$ref" in prop else prop
            assert prop.get("description") or target.get("description"), f"{where}/{name}"
        if where != "#/$defs/policyDocument":  # policy documents are AWS's format, left open
            assert obj.get("additionalProperties") is False, where
