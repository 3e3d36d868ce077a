"""`kmsplan --help` lists every command on one readable line (click would otherwise cut the
docstring's first sentence off with "...")."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kmsplan.cli import cli


def test_help_shows_one_whole_line_per_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = CliRunner().invoke(cli, ["--help"], terminal_width=80)
    assert result.exit_code == 0
    listing = result.output.split("Commands:\n", 1)[1].splitlines()
    commands = [line.split()[0] for line in listing if line.strip()]
    assert sorted(commands) == sorted(cli.commands)
    for line in listing:
        if line.strip():
            assert line.startswith("  ") and not line.startswith("   "), line
            assert not line.rstrip().endswith("..."), line
            assert len(line) <= 80, line
    assert "  lint          Review key policies, grants, rotation and deletion settings." in listing
