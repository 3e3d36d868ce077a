"""Which files a manifest set reads: every *.yaml/*.yml entry of a folder is read or reported,
never dropped; nothing that is not a regular file is read; nothing outside the manifests' git
work tree (or, outside any, the manifest folder) is read at all."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from kmsplan.cli import main
from kmsplan.errors import ValidationFailed
from kmsplan.manifest import load
from kmsplan.manifest.source import Unreadable, read_bytes, tree_root

MANIFEST = "version: 1\nstack: s\nkeys:\n  {name}: {{}}\n"
POLICY = """{"Version": "2012-10-17", "Statement": [{"Sid": "Admin", "Effect": "Allow",
"Principal": {"AWS": "arn:aws:iam::${account_id}:root"}, "Action": "kms:*", "Resource": "*"}]}
"""
# What an outside file may hold; no message may ever quote it.
SECRET = "aws_secret_access_key = wJalrXUtnFEMI-SECRET\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def errors(paths: list[str | Path]) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        load(paths)
    return [d.render() for d in info.value.diagnostics]


def with_policy(folder: Path, reference: str) -> Path:
    return write(
        folder / "keys.yaml",
        f"""
        version: 1
        stack: s
        keys:
          a:
            policy: {{file: {reference}}}
    """,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A manifest folder with one good manifest, in no git work tree."""
    path = tmp_path / "set"
    write(path / "a.yaml", MANIFEST.format(name="a"))
    assert tree_root(path) == path.resolve()
    return path


# ---- every *.yaml entry of a folder is read or reported ---------------------------------------


def test_a_dangling_symlink_in_a_folder_is_an_error_naming_it(folder: Path) -> None:
    (folder / "b.yaml").symlink_to(folder / "gone.yaml")
    assert errors([folder]) == [
        f"{folder}/b.yaml:0:0: error: manifest is a symlink to nothing (its target does not exist)"
    ]


def test_a_folder_named_like_a_manifest_is_an_error_naming_it(folder: Path) -> None:
    (folder / "b.yaml").mkdir()
    assert errors([folder]) == [f"{folder}/b.yaml:0:0: error: manifest is a folder, not a file"]


def test_a_symlink_loop_in_a_folder_is_an_error_naming_it(folder: Path) -> None:
    (folder / "b.yaml").symlink_to(folder / "c.yml")
    (folder / "c.yml").symlink_to(folder / "b.yaml")
    assert errors([folder]) == [
        f"{folder}/b.yaml:0:0: error: manifest is a symlink loop",
        f"{folder}/c.yml:0:0: error: manifest is a symlink loop",
    ]


def test_a_fifo_in_a_folder_is_reported_and_never_opened(folder: Path) -> None:
    # Opening a FIFO for reading would wait for a writer forever.
    os.mkfifo(folder / "b.yaml")
    assert errors([folder]) == [
        f"{folder}/b.yaml:0:0: error: manifest is a named pipe (FIFO), not a file"
    ]


def test_a_symlink_to_a_device_in_a_folder_is_refused_as_outside(folder: Path) -> None:
    (folder / "b.yaml").symlink_to("/dev/zero")
    assert errors([folder]) == [
        f"{folder}/b.yaml:0:0: error: manifest leads outside the manifest folder "
        f"{folder.resolve()}; refused, not read (files inside the manifest folder "
        f"{folder.resolve()})"
    ]


def test_a_device_is_named_as_a_device_and_not_read() -> None:
    with pytest.raises(Unreadable) as info:
        read_bytes(Path("/dev/zero"), root=Path("/dev"))
    assert info.value.reason == "is a device, not a file"


def test_a_dangling_symlink_given_by_name_is_not_called_missing(tmp_path: Path) -> None:
    link = tmp_path / "m.yaml"
    link.symlink_to(tmp_path / "gone.yaml")
    assert errors([link]) == [
        f"{link}:0:0: error: manifest is a symlink to nothing (its target does not exist)"
    ]


def test_validate_exits_1_and_names_the_unreadable_manifest(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "b.yaml").symlink_to(folder / "gone.yaml")
    assert main(["validate", str(folder)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"{folder}/b.yaml:0:0: error: manifest is a symlink to nothing (its target does not "
        "exist)\n"
    )


# ---- policy files that are not files -----------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda p: p.mkdir(), "is a folder, not a file"),
        (lambda p: p.symlink_to(p), "is a symlink loop"),
        (lambda p: os.mkfifo(p), "is a named pipe (FIFO), not a file"),
        (
            lambda p: p.symlink_to(p.parent / "gone.json"),
            "is a symlink to nothing (its target does not exist)",
        ),
    ],
    ids=["folder", "loop", "fifo", "dangling"],
)
def test_a_policy_file_that_is_not_a_file_is_reported_as_what_it_is(
    tmp_path: Path, make: object, what: str
) -> None:
    manifest = with_policy(tmp_path, "p.json")
    make(tmp_path / "p.json")  # type: ignore[operator]
    assert errors([manifest]) == [
        f'{manifest}:5:20: error: keys.a.policy.file: policy file "p.json" {what} '
        "(a JSON or YAML file, relative to this manifest)"
    ]


# ---- nothing outside the manifests' tree ----------------------------------------------------


def test_policy_beside_a_manifest_in_no_git_tree_loads(tmp_path: Path) -> None:
    write(tmp_path / "policies" / "p.json", POLICY)
    (key,) = load([with_policy(tmp_path, "policies/p.json")]).keys
    assert key.policy is not None and key.policy["Statement"][0]["Sid"] == "Admin"


@pytest.mark.parametrize("reference", ["../outside.json", "{outside}", "link.json"])
def test_a_policy_file_outside_the_manifest_folder_is_refused_unread(
    tmp_path: Path, reference: str
) -> None:
    outside = write(tmp_path / "outside.json", SECRET)
    folder = tmp_path / "set"
    manifest = with_policy(folder, reference.format(outside=outside))
    (folder / "link.json").symlink_to(outside)
    found = errors([manifest])
    root = folder.resolve()
    assert found == [
        f"{manifest}:5:20: error: keys.a.policy.file: policy file "
        f'"{reference.format(outside=outside)}" leads outside the manifest folder {root}; '
        f"refused, not read (files inside the manifest folder {root})"
    ]


def test_nothing_from_an_outside_file_reaches_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = write(tmp_path / "credentials", SECRET)
    folder = tmp_path / "set"
    with_policy(folder, str(outside))
    (folder / "z.yaml").symlink_to(outside)
    assert main(["validate", str(folder)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "SECRET" not in err and "aws_secret" not in err
    assert err.count("leads outside the manifest folder") == 2


def make_repo(tmp_path: Path, *, git_file: bool) -> Path:
    repo = tmp_path / "repo"
    if git_file:  # a linked work tree or a submodule: .git is a file
        write(repo / ".git", "gitdir: /elsewhere/.git/worktrees/repo\n")
    else:
        (repo / ".git").mkdir(parents=True)
    return repo


@pytest.mark.parametrize("git_file", [False, True], ids=["git-folder", "git-file"])
def test_files_anywhere_in_the_git_work_tree_load(tmp_path: Path, git_file: bool) -> None:
    repo = make_repo(tmp_path, git_file=git_file)
    write(repo / "policies" / "p.json", POLICY)
    write(repo / "shared" / "b.yaml", MANIFEST.format(name="b"))
    folder = repo / "stacks" / "s"
    with_policy(folder, "../../policies/p.json")
    (folder / "b.yaml").symlink_to(repo / "shared" / "b.yaml")
    assert tree_root(folder) == repo.resolve()
    assert [k.name for k in load([folder]).keys] == ["a", "b"]


def test_files_outside_the_git_work_tree_are_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, git_file=False)
    outside = write(tmp_path / "home" / "credentials", SECRET)
    folder = repo / "stacks"
    manifest = with_policy(folder, "../../home/credentials")
    (folder / "b.yaml").symlink_to(outside)
    root = repo.resolve()
    assert errors([folder]) == [
        f'{manifest}:5:20: error: keys.a.policy.file: policy file "../../home/credentials" '
        f"leads outside the git work tree {root}; refused, not read (files inside the git "
        f"work tree {root})",
        f"{folder}/b.yaml:0:0: error: manifest leads outside the git work tree {root}; "
        f"refused, not read (files inside the git work tree {root})",
    ]


def test_a_manifest_folder_that_is_a_symlink_out_of_the_git_tree_is_refused(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path, git_file=False)
    write(tmp_path / "elsewhere" / "a.yaml", MANIFEST.format(name="a"))
    (repo / "stacks").symlink_to(tmp_path / "elsewhere")
    root = repo.resolve()
    assert errors([repo / "stacks"]) == [
        f"{repo}/stacks/a.yaml:0:0: error: manifest leads outside the git work tree {root}; "
        f"refused, not read (files inside the git work tree {root})",
    ]
