"""Several stacks in one manifest set (grouped by `stack:`), and a stack's `role:`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kmsplan.errors import ValidationFailed
from kmsplan.manifest import load, load_stacks
from kmsplan.model import Role

ROLE = "arn:aws:iam::222233334444:role/kmsplan-apply"


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return str(path)


def errors(paths: list[str]) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        load_stacks(paths)
    return [d.render() for d in info.value.diagnostics]


def test_a_folder_of_two_stacks_loads_as_two_stacks_sorted_by_name(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "version: 1\nstack: zeta\nregion: eu-west-1\nkeys: {z1: {}}\n")
    write(tmp_path / "b.yaml", "version: 1\nstack: alpha\nkeys: {a1: {}}\n")
    write(tmp_path / "c.yaml", "version: 1\nstack: zeta\nkeys: {z2: {}}\n")
    alpha, zeta = load_stacks([str(tmp_path)])
    assert (alpha.name, [k.name for k in alpha.keys]) == ("alpha", ["a1"])
    assert (zeta.name, [k.name for k in zeta.keys]) == ("zeta", ["z1", "z2"])
    assert zeta.region == "eu-west-1"
    assert zeta.files == (str(tmp_path / "a.yaml"), str(tmp_path / "c.yaml"))
    assert alpha.files == (str(tmp_path / "b.yaml"),)


def test_one_stack_may_span_folders(tmp_path: Path) -> None:
    one = write(tmp_path / "x" / "m.yaml", "version: 1\nstack: s\nkeys: {a: {}}\n")
    two = write(tmp_path / "y" / "m.yaml", "version: 1\nstack: s\nkeys: {b: {}}\n")
    (stack,) = load_stacks([str(tmp_path / "x"), str(tmp_path / "y")])
    assert [k.name for k in stack.keys] == ["a", "b"]
    assert stack.files == (one, two)


def test_each_stack_is_checked_on_its_own_and_every_problem_is_reported(tmp_path: Path) -> None:
    # The same logical name in two stacks is fine; twice in one stack is not.
    write(tmp_path / "a.yaml", "version: 1\nstack: one\nkeys: {k: {}}\n")
    write(tmp_path / "b.yaml", "version: 1\nstack: two\nkeys: {k: {}}\n")
    write(tmp_path / "c.yaml", "version: 1\nstack: two\nregion: eu-west-1\nkeys: {k: {}}\n")
    write(tmp_path / "d.yaml", "version: 1\nstack: one\naccount: '12'\nkeys: {}\n")
    c, d = tmp_path / "c.yaml", tmp_path / "d.yaml"
    b = tmp_path / "b.yaml"
    assert errors([str(tmp_path)]) == [
        f'{c}:4:8: error: keys.k: key "k" is already declared in {b} (line 3) '
        "(each logical name once per stack)",
        f'{d}:3:10: error: account: "12" is not valid (12 digits, in quotes)',
    ]


def test_load_still_takes_one_stack_and_refuses_two(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "version: 1\nstack: one\nkeys: {}\n")
    write(tmp_path / "b.yaml", "version: 1\nstack: two\nkeys: {}\n")
    with pytest.raises(ValidationFailed) as info:
        load([str(tmp_path)])
    (problem,) = info.value.diagnostics
    assert problem.message == f'"two" differs from "one" in {tmp_path / "a.yaml"}'


def test_a_role_with_external_id_and_session_name_is_loaded(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        f"""
        version: 1
        stack: s
        account: "222233334444"
        role: {ROLE}
        external_id: team-payments-1
        session_name: kmsplan-ci
        keys: {{}}
    """,
    )
    stack = load([manifest])
    assert stack.role == Role(arn=ROLE, external_id="team-payments-1", session_name="kmsplan-ci")
    assert stack.role.account == "222233334444"
    assert load([write(tmp_path / "n.yaml", "version: 1\nstack: s\nkeys: {}\n")]).role is None


def test_a_role_may_be_named_in_one_file_of_a_stack_and_must_agree(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", f"version: 1\nstack: s\nrole: {ROLE}\nkeys: {{}}\n")
    write(tmp_path / "b.yaml", "version: 1\nstack: s\nkeys: {}\n")
    (stack,) = load_stacks([str(tmp_path)])
    assert stack.role == Role(arn=ROLE)
    other = "arn:aws:iam::222233334444:role/other"
    write(tmp_path / "c.yaml", f"version: 1\nstack: s\nrole: {other}\nkeys: {{}}\n")
    assert errors([str(tmp_path)]) == [
        f'{tmp_path / "c.yaml"}:3:7: error: role: "{other}" differs from "{ROLE}" in '
        f"{tmp_path / 'a.yaml'} (the same role in every file of a manifest set)"
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "role: arn:aws:iam::12:role/x",
            '1:7: error: role: "arn:aws:iam::12:role/x" is not valid (an IAM role ARN such as '
            "arn:aws:iam::123456789012:role/kmsplan-apply)",
        ),
        (
            "role: arn:aws:iam::222233334444:user/x",
            '1:7: error: role: "arn:aws:iam::222233334444:user/x" is not valid (an IAM role ARN '
            "such as arn:aws:iam::123456789012:role/kmsplan-apply)",
        ),
        (
            f"role: {ROLE}\nexternal_id: 'a b'",
            '2:14: error: external_id: "a b" is not valid (2-1224 letters, digits or any of '
            "+ = , . @ : / _ -)",
        ),
        (
            f"role: {ROLE}\nsession_name: x",
            '2:15: error: session_name: "x" is not valid (2-64 letters, digits or any of '
            "+ = , . @ _ -)",
        ),
        (
            "external_id: abc",
            "1:1: error: external_id: external_id is only used with role: (a role: in the "
            "stack's manifests, or no external_id:)",
        ),
        (
            "session_name: abc",
            "1:1: error: session_name: session_name is only used with role: (a role: in the "
            "stack's manifests, or no session_name:)",
        ),
        (
            f"account: '111122223333'\nrole: {ROLE}",
            "2:7: error: role: the role is in account 222233334444, but account: is 111122223333 "
            "(a role in account 111122223333)",
        ),
    ],
)
def test_a_wrong_role_is_an_error_at_its_line(tmp_path: Path, line: str, message: str) -> None:
    manifest = write(tmp_path / "m.yaml", f"{line}\nversion: 1\nstack: s\nkeys: {{}}\n")
    assert errors([manifest]) == [f"{manifest}:{message}"]


def test_one_stack_is_reported_as_load_reports_it_even_with_a_broken_stack_value(
    tmp_path: Path,
) -> None:
    # The file with `stack: 5` still belongs to the one stack: its duplicate key is reported.
    a = write(tmp_path / "a.yaml", "version: 1\nstack: s\nkeys: {k: {}}\n")
    b = write(tmp_path / "b.yaml", "version: 1\nstack: 5\nkeys: {k: {}}\n")
    with pytest.raises(ValidationFailed) as info:
        load([str(tmp_path)])
    expected = [d.render() for d in info.value.diagnostics]
    assert errors([str(tmp_path)]) == expected
    assert len(expected) == 2
    assert expected[1] == (
        f'{b}:3:8: error: keys.k: key "k" is already declared in {a} (line 3) '
        "(each logical name once per stack)"
    )
