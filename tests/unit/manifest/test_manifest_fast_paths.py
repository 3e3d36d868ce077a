"""The quick paths of manifest loading answer exactly as the careful paths they stand in for.

Loading takes shortcuts for the common case: YAML read straight from parser events, a schema
check compiled to plain Python before jsonschema, policy characters and sizes judged from the
compact JSON text. Each must agree with the careful path on any input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kmsplan import kmsspec
from kmsplan.manifest import policyshape, schema, source
from kmsplan.manifest.variables import substitute

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(
    p for p in (ROOT / "examples").rglob("*") if p.suffix in (".yaml", ".yml", ".json")
)
SETTINGS = settings(max_examples=150, deadline=None)


def careful_parse(text: str) -> tuple[Any, dict[Any, Any], dict[Any, Any], list[Any]]:
    node = source._compose("m.yaml", text, kind="manifest")
    if node is None:
        return None, {}, {}, []
    builder = source._Builder("m.yaml")
    value = builder.build(node, ())
    return value, builder.values, builder.keys, builder.problems


def outcome(parse: Any, text: str) -> Any:
    try:
        return ("ok", parse(text))
    except source.SourceError as exc:
        return ("error", exc.diagnostic)


def quick_parse(text: str) -> Any:
    doc, problems = source.parse_yaml("m.yaml", text)
    return doc.value, dict(doc.values), dict(doc.keys), problems


def same_parse(text: str) -> None:
    quick, careful = outcome(quick_parse, text), outcome(careful_parse, text)
    assert quick == careful
    if quick[0] == "ok":  # the same order of nodes, too (source maps follow it)
        assert list(quick[1][1]) == list(careful[1][1])
        assert list(quick[1][2]) == list(careful[1][2])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_parse_the_same_both_ways(path: Path) -> None:
    same_parse(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("text", [
    "", "# only a comment\n", "---\n", "null\n", "plain\n", "[1, 2]\n",
    "a: 1\nb: &x {c: 2}\nd: *x\n",            # aliases: the careful path expands them
    "a: 1\na: 2\n",                           # duplicate key
    "<<: {a: 1}\n", "? [a]\n: 1\n",           # merge key, a list as key
    "a: !!binary aGk=\n", "a: !custom [1]\n",  # tags
    "a: 2001-01-01\nb: 0x1F\nc: 1_000\nd: .inf\ne: ~\nf: Yes\ng: '1'\n",
    "a: 1\n---\nb: 2\n",                      # two documents
    "a: [\n", "a:\n\t- b\n",                  # syntax errors
    "[" * 70 + "]" * 70 + "\n",               # too deep
])
def test_edge_cases_parse_the_same_both_ways(text: str) -> None:
    same_parse(text)


@SETTINGS
@given(st.text(alphabet=" \t\n:-[]{}&*!|>'\"#%@`,?~0aZ${}<", max_size=60))
def test_random_yaml_parses_the_same_both_ways(text: str) -> None:
    same_parse(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 3000) | st.floats(allow_nan=True)
    | st.text(max_size=12) | st.sampled_from(["SYMMETRIC_DEFAULT", "alias/a", "Decrypt", "x"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["version", "stack", "keys", "k", "spec", "aliases",
                                       "policy", "file", "Version", "Statement", "grants",
                                       "name", "grantee", "operations", "tags", "x"]),
                      children, max_size=4),
    max_leaves=12,
)


def jsonschema_valid(value: Any) -> bool:
    return jsonschema.Draft202012Validator(schema.manifest_schema()).is_valid(value)


def test_the_quick_schema_check_compiles() -> None:
    assert schema._quick_check() is not None


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.suffix != ".json"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_valid_examples_pass_the_quick_schema_check(path: Path) -> None:
    value = yaml.safe_load(path.read_text(encoding="utf-8"))
    if jsonschema_valid(value):
        assert schema._surely_valid(value)


@SETTINGS
@given(json_values)
def test_the_quick_schema_check_never_passes_what_jsonschema_rejects(value: Any) -> None:
    if schema._surely_valid(value):
        assert jsonschema_valid(value)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["version", "stack", "keys"]), json_values))
def test_manifest_shaped_values_never_pass_what_jsonschema_rejects(value: Any) -> None:
    value = {"version": 1, "stack": "s", **value}
    if schema._surely_valid(value):
        assert jsonschema_valid(value)


def careful_policy_report(policy: dict[str, Any], placeholders: dict[str, str]) -> list[Any]:
    """What check_policy reported before its shortcuts: every string, one by one; the size
    measured with the placeholders filled in."""
    found: list[Any] = []
    for at, text, _ in source.iter_strings(policy, ()):
        bad = next((ch for ch in text if not kmsspec.is_policy_character(ch)), None)
        if bad is not None:
            found.append(at)
    sized = substitute(policy, placeholders, path=(), in_policy=True, problems=[])
    found.append(policyshape.policy_size(sized) > kmsspec.POLICY_MAX_BYTES)
    return found


def quick_policy_report(policy: dict[str, Any], placeholders: dict[str, str]) -> list[Any]:
    found: list[Any] = []
    oversize = [False]

    def report(at: Any, message: str, allowed: str, at_key: bool) -> None:
        if message.startswith("contains the character"):
            found.append(at)
        if message.startswith("policy is "):
            oversize[0] = True

    policyshape.check_policy(policy, (), report, placeholders=placeholders)
    return [*found, oversize[0]]


policy_text = st.lists(st.sampled_from(
    ["a", " ", "\\", '"', "\t", "\n", "\x00", "\x1f", "\x7f", "\xff", "\u0100", "\u2028",
     "${account_id}", "${region}", "${aws:username}", "${", "}"]), max_size=8).map("".join)


@SETTINGS
@given(
    st.dictionaries(policy_text, policy_text | st.lists(policy_text, max_size=3), max_size=4),
    st.integers(0, 2000),
    st.sampled_from(["eu-west-1", "ap-southeast-2", "eu-west-1\n"]),
)
def test_policy_characters_and_size_are_judged_as_before(
    statement: dict[str, Any], repeat: int, region: str
) -> None:
    # Long enough, at times, for the filled-in size to cross the KMS limit.
    padding = "arn:aws:iam::${account_id}:root " * repeat
    policy = {"Version": "2012-10-17", "Statement": [statement], "Id": padding}
    placeholders = {"account_id": "123456789012", "region": region}
    assert quick_policy_report(policy, placeholders) == careful_policy_report(policy,
                                                                             placeholders)


def test_a_policy_over_the_limit_only_once_filled_in_is_reported_with_the_filled_size() -> None:
    reference, region = "${region}", "ap-southeast-2"  # 9 characters that become 14
    count = kmsspec.POLICY_MAX_BYTES // len(reference) - 10
    policy = {"Version": "2012-10-17", "Statement": [], "Id": reference * count}
    unfilled = policyshape.policy_size(policy)
    assert unfilled <= kmsspec.POLICY_MAX_BYTES
    messages: list[str] = []
    policyshape.check_policy(policy, (), lambda at, m, a, k: messages.append(m),
                             placeholders={"region": region})
    filled = unfilled + count * (len(region) - len(reference))
    assert messages[-1:] == [f"policy is {filled} bytes as compact JSON"]


def test_tag_text_taken_without_a_character_check_has_only_allowed_characters() -> None:
    from kmsplan.manifest.semantics import _ASCII_TAG_TEXT

    quick = [chr(i) for i in range(0x180) if _ASCII_TAG_TEXT.fullmatch(chr(i))]
    assert len(quick) == 26 + 26 + 10 + len(kmsspec.TAG_EXTRA_CHARACTERS)
    assert all(kmsspec.is_tag_character(ch) for ch in quick)
