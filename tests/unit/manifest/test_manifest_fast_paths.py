"""The quick paths of manifest loading answer exactly as the careful paths they stand in for.

Loading takes shortcuts for the common case: YAML read straight from parser events, a schema
check compiled to plain Python before jsonschema, policy characters and sizes judged from the
compact JSON text. Each must agree with the careful path on any input.

Random values almost never reach a shortcut (a random JSON value is never a valid manifest), so
the properties draw manifests valid by construction and near misses of them, and check that
the shortcuts are taken: a shortcut never taken is tested for nothing and saves nothing
(bench/ measures what they save).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import event, given, settings
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


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "---\n",
        "null\n",
        "plain\n",
        "[1, 2]\n",
        "a: 1\nb: &x {c: 2}\nd: *x\n",  # aliases: the careful path expands them
        "a: 1\na: 2\n",  # duplicate key
        "<<: {a: 1}\n",
        "? [a]\n: 1\n",  # merge key, a list as key
        "a: !!binary aGk=\n",
        "a: !custom [1]\n",  # tags
        "a: 2001-01-01\nb: 0x1F\nc: 1_000\nd: .inf\ne: ~\nf: Yes\ng: '1'\n",
        "a: 1\n---\nb: 2\n",  # two documents
        "a: [\n",
        "a:\n\t- b\n",  # syntax errors
        "[" * 70 + "]" * 70 + "\n",  # too deep
    ],
)
def test_edge_cases_parse_the_same_both_ways(text: str) -> None:
    same_parse(text)


@SETTINGS
@given(st.text(alphabet=" \t\n:-[]{}&*!|>'\"#%@`,?~0aZ${}<", max_size=60))
def test_random_yaml_parses_the_same_both_ways(text: str) -> None:
    same_parse(text)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 3000)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["SYMMETRIC_DEFAULT", "alias/a", "Decrypt", "x"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "version",
                    "stack",
                    "keys",
                    "k",
                    "spec",
                    "aliases",
                    "policy",
                    "file",
                    "Version",
                    "Statement",
                    "grants",
                    "name",
                    "grantee",
                    "operations",
                    "tags",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def jsonschema_valid(value: Any) -> bool:
    return jsonschema.Draft202012Validator(schema.manifest_schema()).is_valid(value)


def test_the_quick_schema_check_compiles() -> None:
    assert schema._quick_check() is not None


def _is_manifest(path: Path) -> bool:
    """A manifest (not a policy file or a CI workflow kept beside the examples)."""
    value = yaml.safe_load(path.read_text(encoding="utf-8"))
    return isinstance(value, dict) and "stack" in value


EXAMPLE_MANIFESTS = [p for p in EXAMPLES if p.suffix != ".json" and _is_manifest(p)]


def test_the_examples_hold_manifests() -> None:
    assert len(EXAMPLE_MANIFESTS) >= 3


@pytest.mark.parametrize("path", EXAMPLE_MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_valid_examples_pass_the_quick_schema_check(path: Path) -> None:
    value = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert jsonschema_valid(value)
    assert schema._surely_valid(value)


# Manifests valid by construction, drawn from the schema's own enums and patterns, so that the
# quick check meets the documents it exists for (a random JSON value is almost never one).
DEFS = schema.manifest_schema()["$defs"]
NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,10}"


def _enum(definition: dict[str, Any], field: str) -> list[Any]:
    return list(definition["properties"][field]["enum"])


# Printable text (YAML itself folds line-break characters such as U+0085 when written out).
CHARACTERS = st.characters(exclude_categories=("C", "Zl", "Zp"))
short_text = st.text(CHARACTERS, max_size=8)
some_text = st.text(CHARACTERS, min_size=1, max_size=8)
names = st.from_regex(NAME, fullmatch=True)
rotations = st.fixed_dictionaries(
    {}, optional={"enabled": st.booleans(), "period_days": st.integers(90, 2560)}
)
deletions = st.fixed_dictionaries(
    {}, optional={"protected": st.booleans(), "window_days": st.integers(7, 30)}
)
tag_maps = st.dictionaries(some_text, short_text, max_size=3)
contexts = st.dictionaries(some_text, short_text, min_size=1, max_size=3)
grants = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-zA-Z0-9:/_-]{1,12}", fullmatch=True),
        "grantee": some_text,
        "operations": st.lists(
            st.sampled_from(DEFS["grant"]["properties"]["operations"]["items"]["enum"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
    },
    optional={
        "retiring_principal": some_text,
        "constraints": st.one_of(
            st.fixed_dictionaries({"encryption_context_subset": contexts}),
            st.fixed_dictionaries({"encryption_context_equals": contexts}),
        ),
    },
)
statements = st.dictionaries(
    st.sampled_from(["Sid", "Effect", "Action", "Resource"]), short_text, max_size=3
)
policies = st.one_of(
    st.fixed_dictionaries(
        {
            "Version": st.sampled_from(_enum(DEFS["policyDocument"], "Version")),
            "Statement": st.lists(statements, max_size=2) | statements,
        },
        optional={"Id": short_text},
    ),
    st.fixed_dictionaries({"file": some_text}),
)
keys = st.fixed_dictionaries(
    {},
    optional={
        "description": short_text,
        "spec": st.sampled_from(_enum(DEFS["key"], "spec")),
        "usage": st.sampled_from(_enum(DEFS["key"], "usage")),
        "multi_region": st.booleans(),
        "enabled": st.booleans(),
        "aliases": st.lists(
            st.from_regex(r"alias/[A-Za-z0-9/_-]{1,12}", fullmatch=True), max_size=3, unique=True
        ),
        "rotation": rotations,
        "deletion": deletions,
        "tags": tag_maps,
        "policy": policies,
        "grants": st.lists(grants, max_size=2),
        "bypass_policy_lockout_safety_check": st.booleans(),
        "lint": st.fixed_dictionaries(
            {},
            optional={
                "disable": st.lists(
                    st.fixed_dictionaries({"rule": some_text, "reason": some_text}), max_size=2
                )
            },
        ),
    },
)
manifests = st.fixed_dictionaries(
    {"version": st.just(1), "stack": names},
    optional={
        "account": st.from_regex(r"[0-9]{12}", fullmatch=True),
        "region": st.sampled_from(["eu-west-1", "us-east-1", "ap-southeast-2", "us-gov-west-1"]),
        "defaults": st.fixed_dictionaries(
            {}, optional={"rotation": rotations, "deletion": deletions, "tags": tag_maps}
        ),
        "keys": st.dictionaries(names, keys, max_size=3),
    },
)


def takes_the_fast_path(text: str) -> bool:
    def fast(parser: Any) -> Any:
        return source._fast_document("m.yaml", parser, "manifest")

    return source._parse_events("m.yaml", text, "manifest", fast) is not None


@SETTINGS
@given(manifests, st.booleans(), st.sampled_from([None, True, False]))
def test_generated_manifests_take_the_fast_path_and_parse_the_same(
    value: dict[str, Any], sort_keys: bool, flow_style: bool | None
) -> None:
    # A written-out manifest has no anchors, tags or duplicate keys: the one-pass reader must
    # take it (else it saves nothing) and agree with the careful path on every node.
    text = yaml.safe_dump(
        value, sort_keys=sort_keys, default_flow_style=flow_style, allow_unicode=True
    )
    assert takes_the_fast_path(text)
    same_parse(text)
    assert quick_parse(text)[0] == value


@SETTINGS
@given(manifests)
def test_the_quick_schema_check_passes_valid_manifests(value: dict[str, Any]) -> None:
    assert jsonschema_valid(value)
    assert schema._surely_valid(value)


# Near misses: a valid manifest with one thing changed, the way hand edits go wrong.

BOUNDS = [0, 1, 2, 6, 7, 8, 29, 30, 31, 89, 90, 91, 365, 2559, 2560, 2561]


def _same_kind(value: Any) -> st.SearchStrategy[Any]:
    """Another value of the same JSON type: many stay valid, some cross a bound or a
    pattern."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.sampled_from(BOUNDS) | st.integers(-5, 3000)
    enums = ["SYMMETRIC_DEFAULT", "HMAC_256", "SIGN_VERIFY", "Decrypt", "alias/a", "2012-10-17"]
    return (
        st.sampled_from(enums)
        | st.from_regex(NAME, fullmatch=True)
        | short_text
        | st.sampled_from(["", "x" * 257, "alias/aws/x", "a b"])
    )


def _confusable(value: Any) -> list[Any]:
    """Values Python takes for `value`'s kind but JSON Schema may not (True is an int to
    Python, 90.0 equals 90...), and plain wrong types."""
    if isinstance(value, bool):
        return [int(value), float(value), str(value).lower(), None]
    if isinstance(value, int):
        return [True, False, float(value), str(value), value + 0.5, None]
    return [1, 1.0, True, None, [value], {value: value}]


def _scalar_paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _scalar_paths(v, (*at, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _scalar_paths(v, (*at, i))]
    return [at]


def _container_paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [at, *(p for k, v in value.items() for p in _container_paths(v, (*at, k)))]
    if isinstance(value, list):
        return [at, *(p for i, v in enumerate(value) for p in _container_paths(v, (*at, i)))]
    return []


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _replace_a_scalar(data: st.DataObject, kind: str) -> dict[str, Any]:
    doc = copy.deepcopy(data.draw(manifests, label="manifest"))
    paths = _scalar_paths(doc)
    # Integers are few but the easiest to confuse (True is an int to Python): aim at them.
    integers = [p for p in paths if p[-1:] != ("version",) and type(_at(doc, p)) is int]
    if kind == "confusable" and integers and data.draw(st.booleans(), label="an integer"):
        paths = integers
    at = data.draw(st.sampled_from(paths), label="at")
    old = _at(doc, at)
    if kind == "same kind":
        new = data.draw(_same_kind(old), label="value")
    elif kind == "confusable":
        new = data.draw(st.sampled_from(_confusable(old)), label="value")
    else:
        new = data.draw(st.sampled_from(ODD_VALUES) | json_values, label="value")
    _at(doc, at[:-1])[at[-1]] = new
    return doc


def _change_a_container(data: st.DataObject) -> dict[str, Any]:
    doc = copy.deepcopy(data.draw(manifests, label="manifest"))
    node = _at(doc, data.draw(st.sampled_from(_container_paths(doc)), label="at"))
    if isinstance(node, dict):
        edit = data.draw(st.sampled_from(["unknown key", "drop key"] if node else ["unknown key"]))
        if edit == "unknown key":
            node[data.draw(st.sampled_from(["x", "protectd", "Version", "file"]))] = 1
        else:
            del node[data.draw(st.sampled_from(sorted(node)), label="dropped")]
    elif node:
        node.append(copy.deepcopy(node[0]))  # a duplicate item
    else:
        node.append(data.draw(json_values, label="item"))
    return doc


ODD_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1.0,
    7.5,
    10**6,
    "",
    "1",
    "x" * 300,
    [],
    {},
    ["x"],
    {"x": 1},
    float("nan"),
]


def test_the_quick_schema_check_judges_same_kind_edits_exactly_as_jsonschema() -> None:
    # Strings for strings, integers for integers, booleans for booleans: the quick check
    # decides these exactly (it is stricter only for floats and non-string enums), so a
    # bound, pattern or enum it gets wrong either way shows here.
    seen = {True: 0, False: 0}

    @SETTINGS
    @given(st.data())
    def check(data: st.DataObject) -> None:
        value = _replace_a_scalar(data, "same kind")
        valid = jsonschema_valid(value)
        event(f"jsonschema valid: {valid}")
        seen[valid] += 1
        assert schema._surely_valid(value) == valid

    check()
    # Both answers come up often: the quick check is tried on both sides of every rule.
    assert min(seen.values()) >= SETTINGS.max_examples // 10, seen


def test_the_quick_schema_check_never_passes_a_near_miss_jsonschema_rejects() -> None:
    rejected = [0]

    @SETTINGS
    @given(st.data())
    def check(data: st.DataObject) -> None:
        how = data.draw(st.sampled_from(["confusable", "any value", "container"]), label="how")
        value = _change_a_container(data) if how == "container" else _replace_a_scalar(data, how)
        valid, quick = jsonschema_valid(value), schema._surely_valid(value)
        event(f"{how}: quick check passes: {quick}, jsonschema valid: {valid}")
        rejected[0] += not valid
        assert valid or not quick

    check()
    # Most near misses are invalid: each is a chance for a too lenient quick check to show.
    assert rejected[0] >= SETTINGS.max_examples // 2, rejected


@SETTINGS
@given(st.dictionaries(st.sampled_from(["version", "stack", "keys"]), json_values))
def test_manifest_shaped_values_never_pass_what_jsonschema_rejects(value: Any) -> None:
    value = {"version": 1, "stack": "s", **value}
    assert not schema._surely_valid(value) or jsonschema_valid(value)


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


policy_text = st.lists(
    st.sampled_from(
        [
            "a",
            " ",
            "\\",
            '"',
            "\t",
            "\n",
            "\x00",
            "\x1f",
            "\x7f",
            "\xff",
            "\u0100",
            "\u2028",
            "${account_id}",
            "${region}",
            "${aws:username}",
            "${",
            "}",
        ]
    ),
    max_size=8,
).map("".join)


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
    assert quick_policy_report(policy, placeholders) == careful_policy_report(policy, placeholders)


def test_a_policy_over_the_limit_only_once_filled_in_is_reported_with_the_filled_size() -> None:
    reference, region = "${region}", "ap-southeast-2"  # 9 characters that become 14
    count = kmsspec.POLICY_MAX_BYTES // len(reference) - 10
    policy = {"Version": "2012-10-17", "Statement": [], "Id": reference * count}
    unfilled = policyshape.policy_size(policy)
    assert unfilled <= kmsspec.POLICY_MAX_BYTES
    messages: list[str] = []
    policyshape.check_policy(
        policy, (), lambda at, m, a, k: messages.append(m), placeholders={"region": region}
    )
    filled = unfilled + count * (len(region) - len(reference))
    assert messages[-1:] == [f"policy is {filled} bytes as compact JSON"]


def test_tag_text_taken_without_a_character_check_has_only_allowed_characters() -> None:
    from kmsplan.manifest.semantics import _ASCII_TAG_TEXT

    quick = [chr(i) for i in range(0x180) if _ASCII_TAG_TEXT.fullmatch(chr(i))]
    assert len(quick) == 26 + 26 + 10 + len(kmsspec.TAG_EXTRA_CHARACTERS)
    assert all(kmsspec.is_tag_character(ch) for ch in quick)
