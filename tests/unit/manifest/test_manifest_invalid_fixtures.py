"""Every broken manifest in tests/fixtures/invalid gets exactly its expected messages.

Each case is a file or folder with a sibling `<case>.expected` holding the exact stderr of
`kmsplan validate <case>`, run from the fixtures folder so paths stay relative.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kmsplan.cli import main

INVALID = Path(__file__).resolve().parents[2] / "fixtures" / "invalid"
CASES = sorted(p.name for p in INVALID.iterdir() if p.suffix != ".expected")


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_there_are_enough_cases_and_each_has_its_expected_output() -> None:
    assert len(CASES) >= 40
    expected = {p.stem for p in INVALID.glob("*.expected")}
    assert expected == {Path(c).stem for c in CASES}


@pytest.mark.parametrize("case", CASES)
def test_invalid_manifest_reports_exactly_the_expected_errors(
    case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(INVALID)
    expected = (INVALID / f"{Path(case).stem}.expected").read_text(encoding="utf-8")
    code, out, err = _validate(capsys, case)
    assert (code, out) == (1, "")
    assert err == expected


def test_a_20_mb_file_is_refused_before_it_is_parsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = "# " + "x" * 1021 + "\n"
    Path("huge.yaml").write_text("version: 1\nstack: big\n" + line * (20 * 1024), encoding="utf-8")
    code, out, err = _validate(capsys, "huge.yaml")
    assert (code, out) == (1, "")
    assert err == (
        "huge.yaml:1:1: error: manifest is too large: 20971542 bytes "
        "(at most 5242880 bytes (5 MiB))\n"
    )


def test_nesting_past_the_yaml_parsers_own_limit_is_one_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # libyaml's scanner reads a run of flow brackets ahead of the parser; recent PyYAML
    # releases stop it at their own depth limit before kmsplan's check sees the 65th level.
    # Either way the user gets one located error, never a traceback.
    monkeypatch.chdir(tmp_path)
    Path("deep.yaml").write_text(
        "version: 1\nstack: deep\nkeys:\n  app:\n    policy: " + "[" * 5000 + "]" * 5000 + "\n",
        encoding="utf-8",
    )
    code, out, err = _validate(capsys, "deep.yaml")
    assert (code, out) == (1, "")
    assert err.startswith("deep.yaml:5:") and err.count("\n") == 1
    assert "nested too deeply" in err or "maximum nesting depth" in err


def test_a_missing_path_is_reported_with_the_path_as_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _validate(capsys, "nope/stack.yaml")
    assert (code, out) == (1, "")
    assert err == "nope/stack.yaml:0:0: error: no such file or folder\n"


def test_problems_in_several_files_are_all_reported_in_file_order(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text("version: 1\nstack: s\nkeys:\n  x: {spec: NOPE}\n")
    Path("b.yaml").write_text("version: 1\nstack: s\nkeys:\n  y: {enabled: maybe}\n")
    code, _out, err = _validate(capsys, "b.yaml", "a.yaml")
    assert code == 1
    assert err.splitlines() == [
        "b.yaml:4:16: error: keys.y.enabled: expected true or false, got a string",
        'a.yaml:4:13: error: keys.x.spec: "NOPE" is not a valid value (one of: '
        "SYMMETRIC_DEFAULT, HMAC_224, HMAC_256, HMAC_384, HMAC_512, RSA_2048, RSA_3072, "
        "RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_NIST_EDWARDS25519, "
        "ECC_SECG_P256K1, ML_DSA_44, ML_DSA_65, ML_DSA_87, SM2)",
    ]
