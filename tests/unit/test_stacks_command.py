"""`kmsplan stacks PATH...`: the stacks of a manifest set, for people, programs and a GitHub
Actions matrix."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from kmsplan.cli import main

ROLE = "arn:aws:iam::222233334444:role/kmsplan-apply"


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return str(path)


@pytest.fixture
def org(tmp_path: Path) -> Path:
    """teams/ holds two stacks (one over two files); shared.yaml a third, with a role."""
    write(
        tmp_path / "teams" / "a.yaml",
        """
        version: 1
        stack: payments
        account: "111122223333"
        region: eu-west-1
        keys: {orders: {}}
    """,
    )
    write(tmp_path / "teams" / "b.yaml", "version: 1\nstack: payments\nkeys: {ledger: {}}\n")
    write(tmp_path / "teams" / "c.yaml", "version: 1\nstack: search\nkeys: {}\n")
    write(
        tmp_path / "shared.yaml",
        f"""
        version: 1
        stack: shared
        region: us-east-1
        role: {ROLE}
        external_id: ext-1
        keys: {{}}
    """,
    )
    write(tmp_path / "solo" / "m.yaml", "version: 1\nstack: solo\nkeys: {}\n")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_github_matrix_has_one_entry_per_stack_with_exactly_the_matrix_keys(
    org: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teams, shared, solo = org / "teams", org / "shared.yaml", org / "solo"
    code, out, err = run(
        capsys, "stacks", "--format", "github-matrix", str(teams), str(shared), str(solo)
    )
    assert (code, err) == (0, "")
    assert out.count("\n") == 1  # one line: what `echo "matrix=$(...)" >> $GITHUB_OUTPUT` needs
    assert json.loads(out) == {
        "include": [
            {
                "stack": "payments",
                "path": f"{teams}/a.yaml {teams}/b.yaml",
                "account": "111122223333",
                "region": "eu-west-1",
                "role": None,
            },
            {
                "stack": "search",
                "path": f"{teams}/c.yaml",
                "account": None,
                "region": None,
                "role": None,
            },
            {
                "stack": "shared",
                "path": str(shared),
                "account": None,
                "region": "us-east-1",
                "role": ROLE,
            },
            # A folder that holds exactly one stack is that stack's path.
            {"stack": "solo", "path": str(solo), "account": None, "region": None, "role": None},
        ]
    }


def test_each_stack_path_plans_that_stack_alone(
    org: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "stacks", "--format", "github-matrix", str(org / "teams"), str(org / "solo")
    )
    assert code == 0
    for entry in json.loads(out)["include"]:
        code, out, err = run(capsys, "validate", *entry["path"].split(" "))
        assert (code, err) == (0, "")
        assert out.endswith(f"in stack {entry['stack']}\n")


def test_json_lists_files_keys_and_the_role_settings(
    org: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "stacks", "--format", "json", str(org))
    assert code == 0
    (shared,) = json.loads(out)["stacks"]  # a folder's own files only, not its subfolders
    assert shared == {
        "stack": "shared",
        "path": str(org),
        "account": None,
        "region": "us-east-1",
        "role": ROLE,
        "external_id": "ext-1",
        "session_name": None,
        "files": [str(org / "shared.yaml")],
        "keys": 0,
    }


def test_text_is_a_table_with_a_count(org: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stacks", str(org / "shared.yaml"), str(org / "solo"))
    assert code == 0
    shared, solo = str(org / "shared.yaml"), str(org / "solo")
    width = max(len("PATH"), len(shared), len(solo))
    assert out.splitlines() == [
        f"STACK   {'PATH'.ljust(width)}  ACCOUNT  REGION     ROLE",
        f"shared  {shared.ljust(width)}  -        us-east-1  {ROLE}",
        f"solo    {solo.ljust(width)}  -        -          -",
        "2 stacks.",
    ]


def test_invalid_manifests_are_errors_and_list_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path / "m.yaml", "version: 1\nstack: s\nrole: nope\nkeys: {}\n")
    code, out, err = run(capsys, "stacks", "--format", "github-matrix", bad)
    assert (code, out) == (1, "")
    assert err.startswith(f'{bad}:3:7: error: role: "nope" is not valid')
    code, out, err = run(capsys, "stacks", str(tmp_path / "missing"))
    assert (code, out) == (1, "")
    assert "no such file or folder" in err
