"""The README's Development map names every top-level module and package of kmsplan/, and
nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _map() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Development", 1)[1]
    return section.split("```", 2)[1]


def _top_level() -> set[str]:
    package = ROOT / "kmsplan"
    modules = {p.name for p in package.glob("*.py") if p.name != "__init__.py"}
    packages = {f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").is_file()}
    return modules | packages


def test_the_development_map_names_every_top_level_module() -> None:
    named = set(re.findall(r"[a-z_]+\.py|[a-z_]+/", _map()))
    missing = _top_level() - named
    assert not missing, f"README's Development map does not name {sorted(missing)}"


def test_the_development_map_names_nothing_that_does_not_exist() -> None:
    lines = [line for line in _map().splitlines() if line.startswith("  ") and line[2] != " "]
    names = {n for line in lines for n in re.findall(r"[a-z_]+\.py|[a-z_]+/", line.split("  ")[1])}
    assert names <= _top_level(), sorted(names - _top_level())
