"""Keep the architecture honest: functional core, thin shell.

- only kmsplan/aws/ imports boto3/botocore;
- only the applier calls KMS write APIs;
- the model, the differ, the policy package and the renderers import nothing that does I/O.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kmsplan"

# The KMS operations that change state, as boto3 method names.
WRITE_METHODS = {
    "create_key", "schedule_key_deletion", "cancel_key_deletion", "enable_key", "disable_key",
    "put_key_policy", "enable_key_rotation", "disable_key_rotation", "tag_resource",
    "untag_resource", "update_key_description", "create_alias", "update_alias", "delete_alias",
    "create_grant", "revoke_grant", "retire_grant", "replicate_key", "rotate_key_on_demand",
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_only_the_aws_package_imports_boto(path: Path) -> None:
    if _rel(path).startswith("kmsplan/aws/"):
        return
    offending = {m for m in _imports(path) if m.split(".")[0] in {"boto3", "botocore"}}
    assert not offending, (
        f"{_rel(path)} imports {sorted(offending)}; AWS access belongs in kmsplan/aws/"
    )


PURE_PREFIXES = ("kmsplan/model.py", "kmsplan/plan/", "kmsplan/policy/", "kmsplan/render/")
PURE_FORBIDDEN = {"kmsplan.aws", "kmsplan.runner", "kmsplan.applier", "kmsplan.apply",
                  "subprocess", "socket", "urllib", "http"}


@pytest.mark.parametrize(
    "path", [p for p in _modules() if _rel(p).startswith(PURE_PREFIXES)], ids=_rel
)
def test_pure_core_does_no_io(path: Path) -> None:
    if _rel(path) == "kmsplan/plan/planfile.py":
        return  # reads and writes the saved-plan file: that is its job
    bad = {
        m for m in _imports(path) if any(m == f or m.startswith(f + ".") for f in PURE_FORBIDDEN)
    }
    assert not bad, f"{_rel(path)} imports {sorted(bad)}: the core must stay pure"


_WRITE_CALL = re.compile(r"\.(" + "|".join(sorted(WRITE_METHODS)) + r")\(")


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_only_the_applier_writes_to_kms(path: Path) -> None:
    rel = _rel(path)
    if rel.startswith(("kmsplan/apply/", "kmsplan/applier.py")):
        return
    hits = _WRITE_CALL.findall(path.read_text(encoding="utf-8"))
    assert not hits, f"{rel} calls KMS write APIs {sorted(set(hits))}; only the applier may"
