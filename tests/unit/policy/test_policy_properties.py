"""Property tests: normalize is idempotent, equivalence is reflexive and symmetric, and the
rewrites IAM reads the same (shuffled statements and lists, string vs one-element list,
action and condition key case, account id vs root ARN) keep equivalence."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kmsplan.policy import equivalent, normalize

ACCOUNTS = ["111122223333", "444455556666"]
ACTIONS = [
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:Put*",
    "kms:*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
    "*",
]
ROLES = [f"arn:aws:iam::{a}:role/{r}" for a in ACCOUNTS for r in ("app", "admin")]
KEYS = ["kms:ViaService", "aws:SourceAccount", "kms:CallerAccount", "aws:PrincipalArn"]
VALUES = ["s3.eu-west-1.amazonaws.com", "111122223333", "x", "Y", "true", "5"]
OPERATORS = ["StringEquals", "StringLike", "ArnLike", "Bool"]


def _some(items: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), min_size=1, max_size=3, unique=True)


principal = st.one_of(
    st.just("*"),
    st.builds(lambda aws: {"AWS": aws}, _some(ACCOUNTS + ROLES + ["*"])),
    st.builds(lambda svc: {"Service": svc}, _some(["logs.amazonaws.com", "s3.amazonaws.com"])),
)
condition = st.dictionaries(
    st.sampled_from(OPERATORS),
    st.dictionaries(st.sampled_from(KEYS), _some(VALUES), min_size=1, max_size=2),
    max_size=2,
)


@st.composite
def statement(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    if draw(st.booleans()):
        out["Sid"] = draw(st.sampled_from(["A", "B", "C"]))
    out["Principal" if draw(st.integers(0, 4)) else "NotPrincipal"] = draw(principal)
    out["Action" if draw(st.integers(0, 4)) else "NotAction"] = draw(_some(ACTIONS))
    out["Resource"] = draw(_some(["*", "arn:aws:kms:eu-west-1:111122223333:key/k"]))
    cond = draw(condition)
    if cond:
        out["Condition"] = cond
    return out


policies = st.builds(
    lambda version, statements: {"Version": version, "Statement": statements},
    st.sampled_from(["2012-10-17", "2008-10-17"]),
    st.lists(statement(), min_size=1, max_size=4),
)


@st.composite
def rewritten(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    """An equivalent rewrite of `doc`, chosen by hypothesis."""

    def values(value: Any, *, case: bool = False) -> Any:
        items = list(value) if isinstance(value, list) else [value]
        items = draw(st.permutations(items))
        if case:
            items = [v.upper() if draw(st.booleans()) else v.lower() for v in items]
        if draw(st.booleans()):
            items = items + items[:1]  # a duplicate
        if len(set(items)) == 1 and draw(st.booleans()):
            return items[0]
        return items

    def principals(value: Any) -> Any:
        if value == "*":
            return draw(st.sampled_from(["*", {"AWS": "*"}, {"AWS": ["*"]}]))
        out = {}
        for kind, names in value.items():
            if kind == "AWS":
                names = [
                    f"arn:aws:iam::{n}:root" if n in ACCOUNTS and draw(st.booleans()) else n
                    for n in names
                ]
            out[kind] = values(names)
        return out

    statements = []
    for original in draw(st.permutations(doc["Statement"])):
        s: dict[str, Any] = {}
        for element, value in original.items():
            if element in ("Principal", "NotPrincipal"):
                s[element] = principals(value)
            elif element in ("Action", "NotAction"):
                s[element] = values(value, case=True)
            elif element == "Resource":
                s[element] = values(value)
            elif element == "Condition":
                s[element] = {
                    op: {
                        (k.upper() if draw(st.booleans()) else k): values(v)
                        for k, v in block.items()
                    }
                    for op, block in value.items()
                }
            else:
                s[element] = value
        statements.append(s)
    return {"Version": doc["Version"], "Statement": statements}


@settings(max_examples=100, deadline=None)
@given(policies)
def test_normalize_is_idempotent(doc: dict[str, Any]) -> None:
    once = normalize(doc)
    assert normalize(once) == once
    meaning = normalize(doc, labels=False)
    assert normalize(meaning, labels=False) == meaning


@settings(max_examples=100, deadline=None)
@given(policies, policies)
def test_equivalent_is_reflexive_and_symmetric(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert equivalent(a, a)
    assert equivalent(a, b) == equivalent(b, a)
    assert equivalent(a, b) == (normalize(a, labels=False) == normalize(b, labels=False))


@settings(max_examples=150, deadline=None)
@given(st.data(), policies)
def test_equivalent_rewrites_stay_equivalent(data: st.DataObject, doc: dict[str, Any]) -> None:
    variant = data.draw(rewritten(doc))
    assert equivalent(doc, variant)
    assert normalize(doc) == normalize(variant)
