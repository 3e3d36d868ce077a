"""Whatever bytes arrive, `kmsplan validate` answers with exit code 0 or 1, never a traceback."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmsplan.errors import ValidationFailed
from kmsplan.manifest import load

ROOT = Path(__file__).resolve().parents[3]
VALID = [
    (ROOT / "examples" / "minimal.yaml").read_text(encoding="utf-8"),
    (ROOT / "examples" / "payments" / "stack.yaml").read_text(encoding="utf-8"),
    (ROOT / "examples" / "signing.yaml").read_text(encoding="utf-8"),
]
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def validate_bytes(folder: Path, data: bytes) -> None:
    """Load `data` as a manifest: a Stack or ValidationFailed, nothing else may come out."""
    path = folder / "m.yaml"
    path.write_bytes(data)
    try:
        stack = load([path])
    except ValidationFailed as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert d.render().startswith(f"{path}:")
    else:
        assert stack.name


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_never_crash(scratch: Path, data: bytes) -> None:
    validate_bytes(scratch, data)


@FUZZ
@given(
    base=st.sampled_from(VALID),
    cuts=st.lists(
        st.tuples(
            st.integers(0, 4000),
            st.integers(0, 40),
            st.text(alphabet=" \t\n:-[]{}&*!|>'\"#%@`,?~0aZ${}", max_size=6),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_text_mutations_of_valid_manifests_never_crash(
    scratch: Path, base: str, cuts: list[tuple[int, int, str]]
) -> None:
    text = base
    for at, length, insert in cuts:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + length :]
    validate_bytes(scratch, text.encode("utf-8"))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 3000)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


@FUZZ
@given(base=st.sampled_from(VALID), data=st.data())
def test_structural_mutations_of_valid_manifests_never_crash(
    scratch: Path, base: str, data: st.DataObject
) -> None:
    doc = yaml.safe_load(base)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        target = data.draw(st.sampled_from(paths))
        parent = doc
        for part in target[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()):
            parent[target[-1]] = data.draw(json_values)
        elif isinstance(parent, dict):
            del parent[target[-1]]
        else:
            parent.pop(target[-1])
    validate_bytes(scratch, yaml.safe_dump(doc, sort_keys=False).encode("utf-8"))
