"""Each KMS fact lives in kmsplan/kmsspec.py only: a literal copy elsewhere in the package
(a window range, a rotation bound, a policy version) would drift from it unnoticed."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmsplan import kmsspec

PACKAGE = Path(__file__).resolve().parents[2] / "kmsplan"
SPEC = PACKAGE / "kmsspec.py"

# Names that hold a KMS fact when they are given a literal value.
# (A tag's name, TAG_WINDOW = "kmsplan:deletion-window", is kmsplan's own word, not a fact.)
FACT_NAME = re.compile(
    r"^(?!tag_)(.*(window|period|policy_size_limit|policy_max)|(default_)?versions?$)", re.I
)
# Values that are KMS facts in any context.
FACT_STRINGS = frozenset(kmsspec.POLICY_VERSIONS)
FACT_NUMBERS = frozenset({kmsspec.ROTATION_PERIOD_MAX_DAYS, kmsspec.POLICY_MAX_BYTES})


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != SPEC)


def _literal(node: ast.AST | None) -> bool:
    """An int or str constant, or a tuple/list made only of them."""
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, str)
    if isinstance(node, (ast.Tuple, ast.List)):
        return bool(node.elts) and all(_literal(e) for e in node.elts)
    return False


def _states_a_fact(node: ast.AST | None) -> bool:
    values = (
        [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)] if node is not None else []
    )
    return any(type(v) is int or (type(v) is str and v[:2] in ("19", "20")) for v in values)


def _names(target: ast.AST) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Attribute):
        yield target.attr
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _names(element)


def _docstrings(tree: ast.AST) -> set[int]:
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def copies(source: str) -> list[str]:
    """Where `source` restates a KMS fact: "line N: ..." for each copy."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            targets, value = [], None
        named = [n for t in targets for n in _names(t) if FACT_NAME.search(n)]
        # A window or period is a number and a version a date; a name like WINDOW_DEFAULT =
        # "window-default" (an enum's value) states no fact.
        if named and _literal(value) and _states_a_fact(value):
            found.append(f"line {node.lineno}: {', '.join(named)} = {ast.unparse(value)}")
        if isinstance(node, ast.Constant) and id(node) not in docstrings:
            value_ = node.value
            if (type(value_) is str and value_ in FACT_STRINGS) or (
                type(value_) is int and value_ in FACT_NUMBERS
            ):
                found.append(f"line {node.lineno}: {value_!r}")
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_module_restates_a_kms_fact(path: Path) -> None:
    found = copies(path.read_text(encoding="utf-8"))
    assert not found, (
        f"{path.relative_to(PACKAGE.parent)} restates KMS facts that belong in "
        f"kmsplan/kmsspec.py (import them from there): {found}"
    )


@pytest.mark.parametrize(
    "source",
    [
        "MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = 7, 30\n",
        "class C:\n    max_rotation_period_days: int = 365\n",
        'VERSIONS = ("2008-10-17", "2012-10-17")\n',
        'policy = {"Version": "2012-10-17"}\n',
        "click.IntRange(90, 2560)\n",
        "limit = 32768\n",
    ],
)
def test_the_check_finds_a_literal_copy(source: str) -> None:
    assert copies(source)


def test_the_check_leaves_imported_facts_and_docstrings_alone() -> None:
    source = (
        '"""Policies say "2012-10-17"."""\n'
        "MIN_WINDOW_DAYS = kmsspec.DELETION_WINDOW_MIN_DAYS\n"
        "period_days: int | None = None\n"
        "unused_for_days: int = 30\n"
    )
    assert copies(source) == []
