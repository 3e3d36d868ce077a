"""`kmsplan lint` on the command line: formats, --fail-on exit codes, --output, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lint_helpers import ROOT

from kmsplan.cli import main


@pytest.fixture(autouse=True)
def _in_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_text_report_lists_findings_and_fails_on_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "tests/fixtures/lint/KMS001/bad.yaml"]) == 1
    out = capsys.readouterr().out
    assert out == (
        "tests/fixtures/lint/KMS001/bad.yaml:18:22: error: KMS001 [public-decrypt] "
        'Statement[1] ("AnyoneMayDecrypt") allows kms:Decrypt to every principal ("*") with no '
        "condition that limits the callers to an account, an organization or an AWS service\n"
        "1 finding: 1 error, 0 warnings, 0 info.\n"
    )


@pytest.mark.parametrize(("fail_on", "expected"), [("error", 0), ("warning", 1), ("never", 0)])
def test_fail_on_sets_the_exit_code_for_warnings(
    fail_on: str, expected: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["lint", "--fail-on", fail_on, "tests/fixtures/lint/KMS008/bad.yaml"])
    assert code == expected
    assert capsys.readouterr().out.endswith("1 finding: 0 errors, 1 warning, 0 info.\n")


def test_info_findings_never_fail_even_with_fail_on_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["lint", "--fail-on", "warning", "tests/fixtures/lint/KMS013/bad.yaml"]) == 0
    assert "info: KMS013" in capsys.readouterr().out


def test_fail_on_never_exits_zero_with_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--fail-on", "never", "examples/bad"]) == 0
    assert capsys.readouterr().out.endswith(
        "18 findings: 3 errors, 13 warnings, 2 info (1 suppressed).\n"
    )


def test_suppressed_only_findings_exit_zero_even_with_fail_on_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["lint", "--fail-on", "warning", "tests/fixtures/lint/KMS011/good.yaml"]) == 0
    out = capsys.readouterr().out
    assert "(suppressed: being retired after the migration to the new orders key)" in out
    assert out.endswith("No findings (1 suppressed).\n")


def test_clean_stack_says_so_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "tests/fixtures/lint/realistic"]) == 0
    assert capsys.readouterr().out == "No findings.\n"


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--format", "json", "tests/fixtures/lint/KMS011/good.yaml"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "format_version": 1,
        "findings": [
            {
                "rule": "KMS011",
                "severity": "warning",
                "title": "Deletion protection is off",
                "message": "deletion protection is off for key 'retiring': a plan may schedule "
                "its deletion (with --allow-delete)",
                "key": "retiring",
                "path": "keys.retiring.deletion.protected",
                "location": {
                    "file": "tests/fixtures/lint/KMS011/good.yaml",
                    "line": 11,
                    "column": 27,
                },
                "suppressed": True,
                "suppression_reason": "being retired after the migration to the new orders key",
            }
        ],
        "summary": {"error": 0, "warning": 0, "info": 0, "suppressed": 1},
    }


def test_sarif_report_written_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lint.sarif"
    code = main(["lint", "--format", "sarif", "-o", str(out), "examples/bad"])
    assert code == 1
    assert capsys.readouterr().out == ""
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["version"] == "2.1.0"
    assert len(document["runs"][0]["results"]) == 19


def test_max_rotation_days_option(capsys: pytest.CaptureFixture[str]) -> None:
    path = "tests/fixtures/lint/KMS009/bad.yaml"
    assert main(["lint", "--fail-on", "warning", path]) == 1
    assert main(["lint", "--fail-on", "warning", "--max-rotation-days", "730", path]) == 0
    assert capsys.readouterr().out.endswith("No findings.\n")


def test_invalid_manifest_is_an_error_with_its_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "broken.yaml"
    manifest.write_text("version: 1\nstack: s\nkeys:\n  k:\n    rotation: {enabled: maybe}\n")
    assert main(["lint", str(manifest)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{manifest}:5:" in captured.err
    assert "keys.k.rotation.enabled" in captured.err


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--format", "xml", "examples/bad"]) == 1
    assert "Invalid value for '--format'" in capsys.readouterr().err
