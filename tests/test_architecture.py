"""Keep the architecture honest: functional core, thin shell.

- only kmsplan/aws/ imports boto3/botocore;
- only the applier calls KMS write APIs, directly or through a string naming one;
- the model, the differ, the policy and lint packages and the renderers import nothing that
  does I/O.

Every module named here must exist: a rule about a module that was moved away checks nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kmsplan"

# The KMS operations that change state (the KMS API reference's write operations).
WRITE_OPERATIONS = frozenset(
    [
        "CreateKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "EnableKey",
        "DisableKey",
        "PutKeyPolicy",
        "EnableKeyRotation",
        "DisableKeyRotation",
        "TagResource",
        "UntagResource",
        "UpdateKeyDescription",
        "CreateAlias",
        "UpdateAlias",
        "DeleteAlias",
        "CreateGrant",
        "RevokeGrant",
        "RetireGrant",
        "ReplicateKey",
        "RotateKeyOnDemand",
        "ImportKeyMaterial",
        "DeleteImportedKeyMaterial",
        "UpdatePrimaryRegion",
    ]
)


def boto3_method(operation: str) -> str:
    """ "CreateKey" -> "create_key"."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


WRITE_METHODS = frozenset(boto3_method(op) for op in WRITE_OPERATIONS)

# Who may do what. Each entry is a module ("a/b.py") or a package ("a/b/").
AWS_PACKAGE = "kmsplan/aws/"  # the only importer of boto3/botocore
WRITERS = ("kmsplan/apply/",)  # the only callers of KMS write APIs
# The local emulator's patch layer implements KMS write operations (the server's side of
# ReplicateKey, UpdatePrimaryRegion) inside moto; it calls no KMS API.
EMULATOR = ("kmsplan/local_kms_patches.py",)
PURE_PREFIXES = (
    "kmsplan/model.py",
    "kmsplan/plan/",
    "kmsplan/policy/",
    "kmsplan/lint/",
    "kmsplan/render/",
)
PURE_EXEMPT = ("kmsplan/plan/planfile.py",)  # reads and writes the saved-plan file: its job
PURE_FORBIDDEN = (
    "kmsplan.aws",
    "kmsplan.run",
    "kmsplan.apply",
    "subprocess",
    "socket",
    "urllib",
    "http",
)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _modules(*, under: tuple[str, ...] = ("kmsplan/",), but: tuple[str, ...] = ()) -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if _rel(p).startswith(under) and not _rel(p).startswith(but)
    )


def _exists(name: str) -> bool:
    """A repository path ("kmsplan/plan/", "kmsplan/model.py") or a dotted module name."""
    if "/" in name:
        return (ROOT / name).is_dir() if name.endswith("/") else (ROOT / name).is_file()
    top = name.split(".")[0]
    if top != "kmsplan":
        return True  # the standard library: not ours to move
    path = ROOT.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


NAMED = sorted(
    {AWS_PACKAGE, *WRITERS, *EMULATOR, *PURE_PREFIXES, *PURE_EXEMPT, *PURE_FORBIDDEN}, key=str
)


@pytest.mark.parametrize("name", NAMED)
def test_every_module_a_rule_names_exists(name: str) -> None:
    assert _exists(name), (
        f"{name} is named by tests/test_architecture.py but does not exist; point the rule at "
        "where the code lives now"
    )


def test_every_rule_has_modules_to_check() -> None:
    assert _modules(but=(AWS_PACKAGE,))
    assert _modules(but=WRITERS)
    assert _modules(under=PURE_PREFIXES, but=PURE_EXEMPT)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", _modules(but=(AWS_PACKAGE,)), ids=_rel)
def test_only_the_aws_package_imports_boto(path: Path) -> None:
    offending = {m for m in _imports(path) if m.split(".")[0] in {"boto3", "botocore"}}
    assert not offending, (
        f"{_rel(path)} imports {sorted(offending)}; AWS access belongs in {AWS_PACKAGE}"
    )


@pytest.mark.parametrize("path", _modules(under=PURE_PREFIXES, but=PURE_EXEMPT), ids=_rel)
def test_pure_core_does_no_io(path: Path) -> None:
    bad = {
        m for m in _imports(path) if any(m == f or m.startswith(f + ".") for f in PURE_FORBIDDEN)
    }
    assert not bad, f"{_rel(path)} imports {sorted(bad)}: the core must stay pure"


# ---- write calls --------------------------------------------------------------------------


def write_calls(source: str) -> list[str]:
    """Every way `source` could make a KMS write call, as "line N: what".

    A write call is found however it is spelled:
    - a boto3 write method as an attribute: `kms.create_key(...)`, `f = kms.create_key`;
    - a boto3 write method's name as a string: `getattr(kms, "create_key")`,
      `operator.methodcaller("create_key")`;
    - a write operation's name passed to any call: `call(kms, "CreateKey")`,
      `method_name("CreateKey")`, `kms._make_api_call("CreateKey", {})`.
    Naming an operation as data stays allowed: comparing with it, keeping it in a table, and
    a plan's `ApiCall(operation="CreateKey", ...)` (the plan says which calls; the applier
    makes them).
    """
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in WRITE_METHODS:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Constant) and node.value in WRITE_METHODS:
            found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Call) and not _is_plan_data(node):
            arguments = [*node.args, *(k.value for k in node.keywords)]
            found.extend(
                f"line {a.lineno}: {a.value!r} passed to {ast.unparse(node.func)}()"
                for a in arguments
                if isinstance(a, ast.Constant) and a.value in WRITE_OPERATIONS
            )
    return sorted(set(found), key=lambda f: (int(f.split()[1].rstrip(":")), f))


def _is_plan_data(node: ast.Call) -> bool:
    """`ApiCall(operation="...", ...)`: a plan naming a call, not making it."""
    callee = node.func.attr if isinstance(node.func, ast.Attribute) else ast.unparse(node.func)
    return callee == "ApiCall" and not node.args


@pytest.mark.parametrize("path", _modules(but=(*WRITERS, *EMULATOR)), ids=_rel)
def test_only_the_applier_writes_to_kms(path: Path) -> None:
    hits = write_calls(path.read_text(encoding="utf-8"))
    assert not hits, f"{_rel(path)} makes KMS write calls {hits}; only {WRITERS} may"


@pytest.mark.parametrize(
    "snippet",
    [
        "kms.create_key(Description='x')",
        "schedule = clients.kms.schedule_key_deletion",
        "getattr(kms, 'create_grant')(KeyId=k)",
        "operator.methodcaller('tag_resource', KeyId=k)(kms)",
        "call(kms, 'CreateKey', Description='x')",
        "getattr(kms, method_name('PutKeyPolicy'))(KeyId=k)",
        "kms._make_api_call('ScheduleKeyDeletion', {'KeyId': k})",
        "aws.call(kms, operation='DeleteAlias', AliasName=a)",
    ],
)
def test_the_write_call_check_catches_each_spelling(snippet: str) -> None:
    assert write_calls(snippet)


def test_the_write_call_check_names_line_and_call() -> None:
    source = "x = 1\nmethod = getattr(kms, method_name('CreateKey'))\nkms.revoke_grant(G=1)\n"
    assert write_calls(source) == [
        "line 2: 'CreateKey' passed to method_name()",
        "line 3: .revoke_grant",
    ]


def test_the_write_call_check_allows_naming_operations_as_data() -> None:
    source = (
        "ApiCall(operation='CreateKey', params={'Description': 'x'})\n"
        "if call.operation == 'ScheduleKeyDeletion': pass\n"
        "QUOTAS = {'CreateKey': 5.0, 'TagResource': 10.0}\n"
        "GRANT_OPERATIONS = frozenset({'CreateGrant', 'RetireGrant'})\n"
        "call(kms, 'DescribeKey', KeyId=k)\n"
        "kms.describe_key(KeyId=k)\n"
    )
    assert write_calls(source) == []


def test_the_check_knows_every_operation_the_applier_may_make() -> None:
    from kmsplan.apply import WRITE_OPERATIONS as APPLIER_WRITES

    assert set(APPLIER_WRITES) <= WRITE_OPERATIONS
