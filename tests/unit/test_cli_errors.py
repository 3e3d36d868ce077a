"""The last resort in `kmsplan.cli.main`: an exception kmsplan did not expect (a bug) ends in
one line that says so, names the exception and where to report it, and exits 1; the
traceback only with KMSPLAN_DEBUG=1."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmsplan import __version__
from kmsplan.cli import main

MANIFEST = "version: 1\nstack: s\nkeys:\n  a: {}\n"


@pytest.fixture
def broken_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """`kmsplan validate` on a valid manifest, with the loader failing as a bug would."""

    def load_stacks(paths: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("kmsplan.commands.validate.load_stacks", load_stacks)
    monkeypatch.delenv("KMSPLAN_DEBUG", raising=False)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    return str(manifest)


def test_an_unexpected_exception_is_one_line_saying_it_is_a_bug(
    broken_load: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", broken_load]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(
        f"error: internal error (a bug in kmsplan {__version__}): ZeroDivisionError in "
        "kmsplan/commands/validate.py:"  # the last frame of kmsplan's own code
    )
    assert err.endswith(
        ". Please report it on kmsplan's issue tracker with the command you ran; set "
        "KMSPLAN_DEBUG=1 to see the traceback\n"
    )
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err and "division by zero" not in err


def test_kmsplan_debug_shows_the_traceback_too(
    broken_load: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KMSPLAN_DEBUG", "1")
    assert main(["validate", broken_load]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("Traceback (most recent call last):\n")
    assert "ZeroDivisionError: division by zero\n" in err
    assert err.splitlines()[-1].startswith("error: internal error (a bug in kmsplan ")


def test_user_errors_are_not_called_bugs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 1
    _, err = capsys.readouterr()
    assert err == f"{tmp_path / 'missing.yaml'}:0:0: error: no such file or folder\n"
