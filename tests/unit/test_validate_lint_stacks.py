"""`kmsplan validate` and `kmsplan lint` of manifests that declare several stacks: each stack
checked on its own (its own keys and account:), one report that lists the stacks found and
says which stack each result belongs to, and one exit code for the run. With one stack, the
output is what it always was."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kmsplan.cli import main
from kmsplan.lint.finding import Finding, Severity
from kmsplan.model import Stack
from kmsplan.render.findings import render_json_by_stack, render_text_by_stack
from kmsplan.render.sarif import render_sarif
from kmsplan.run.linting import LintOutcome

SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "sarif-2.1.0.json"

# The same grant in two stacks: in payments' own account, in another account for search.
GRANT = """\
    grants:
      - name: app
        grantee: arn:aws:iam::111122223333:role/app
        operations: [Decrypt]
        constraints: {{encryption_context_subset: {{service: {service}}}}}
"""
PAYMENTS = """
version: 1
stack: payments
account: "111122223333"
region: eu-west-1
keys:
  orders:
    rotation: {enabled: true}
""" + GRANT.format(service="orders")
SEARCH = """
version: 1
stack: search
account: "222233334444"
keys:
  index:
    rotation: {enabled: true}
""" + GRANT.format(service="search")
# A second file of stack search, in another folder: a key any principal may decrypt with.
SEARCH_PUBLIC = """
version: 1
stack: search
keys:
  public:
    rotation: {enabled: true}
    policy:
      Version: "2012-10-17"
      Statement:
        - Sid: AccountAdmin
          Effect: Allow
          Principal: {AWS: "arn:aws:iam::${account_id}:root"}
          Action: "kms:*"
          Resource: "*"
        - Sid: AnyoneMayDecrypt
          Effect: Allow
          Principal: "*"
          Action: kms:Decrypt
          Resource: "*"
"""

STACKS_FOUND = [
    "Stacks (2):",
    "  payments  111122223333, eu-west-1",
    "  search  222233334444, (Region of the run)",
    "",
]
KMS019 = (
    "kms/search.yaml:9:18: warning: KMS019 [index] grant 'app' gives Decrypt to "
    "arn:aws:iam::111122223333:role/app of account 111122223333 (the key is in 222233334444)"
)
KMS001 = (
    'more/search-public.yaml:16:22: error: KMS001 [public] Statement[1] ("AnyoneMayDecrypt") '
    'allows kms:Decrypt to every principal ("*") with no condition that limits the callers '
    "to an account, an organization or an AWS service"
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """kms/ holds two stacks; stack search spans kms/ and more/. Paths are relative to it."""
    write(tmp_path / "kms" / "payments.yaml", PAYMENTS)
    write(tmp_path / "kms" / "search.yaml", SEARCH)
    write(tmp_path / "more" / "search-public.yaml", SEARCH_PUBLIC)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# validate


def test_validate_lists_the_stacks_found_then_ok_per_stack(
    org: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "validate", "kms", "more")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        *STACKS_FOUND,
        "OK: 1 key in stack payments",
        "OK: 2 keys in stack search",
    ]


def test_validate_of_one_stack_over_two_folders_is_one_ok_line_as_before(
    org: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "validate", "kms/search.yaml", "more")
    assert (code, out, err) == (0, "OK: 2 keys in stack search\n", "")
    code, out, err = run(capsys, "validate", "kms/payments.yaml")
    assert (code, out, err) == (0, "OK: 1 key in stack payments\n", "")


def test_validate_lists_a_mistyped_stack_name_as_a_stack_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "kms" / "a.yaml", "version: 1\nstack: payments\nkeys: {orders: {}}\n")
    write(tmp_path / "kms" / "b.yaml", "version: 1\nstack: payment\nkeys: {refunds: {}}\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "validate", "kms")
    assert code == 0
    assert out.splitlines() == [
        "Stacks (2):",
        "  payment  (account of the credentials), (Region of the run)",
        "  payments  (account of the credentials), (Region of the run)",
        "",
        "OK: 1 key in stack payment",
        "OK: 1 key in stack payments",
    ]


def test_validate_reports_every_problem_of_every_stack_and_exits_1(
    org: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(org / "kms" / "payments.yaml", PAYMENTS.replace("enabled: true}", "enabled: maybe}"))
    # The same logical name twice in stack search (kms/ and more/), fine in two stacks.
    write(org / "more" / "search-public.yaml", SEARCH_PUBLIC.replace("public:", "index:"))
    code, out, err = run(capsys, "validate", "kms", "more")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "kms/payments.yaml:7:25: error: keys.orders.rotation.enabled: expected true or "
        "false, got a string",
        'more/search-public.yaml:4:3: error: keys.index: key "index" is already declared in '
        "kms/search.yaml (line 5) (each logical name once per stack)",
    ]


# lint


def test_lint_reports_each_stack_under_its_heading_with_one_summary_and_exit_code(
    org: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "lint", "kms", "more")
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        *STACKS_FOUND,
        "=== stack payments ===",
        "No findings.",
        "",
        "=== stack search ===",
        KMS019,
        KMS001,
        "2 findings: 1 error, 1 warning, 0 info.",
        "",
        "Run: 2 stacks. 2 findings: 1 error, 1 warning, 0 info.",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["kms", "more"], 1),  # the error in search
        (["kms", "more", "--fail-on", "never"], 0),
        (["kms"], 0),  # only search's warning left
        (["kms", "--fail-on", "warning"], 1),
    ],
)
def test_lint_exit_code_is_1_when_any_stack_reaches_fail_on(
    org: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: int
) -> None:
    assert run(capsys, "lint", *args)[0] == expected


def test_lint_of_one_stack_prints_what_it_always_did(
    org: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "lint", "kms/payments.yaml") == (0, "No findings.\n", "")
    code, out, _ = run(capsys, "lint", "kms/search.yaml", "more")
    assert code == 1
    assert out == f"{KMS019}\n{KMS001}\n2 findings: 1 error, 1 warning, 0 info.\n"


def test_lint_json_names_each_findings_stack_and_lists_the_stacks(
    org: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "lint", "--format", "json", "kms", "more")
    assert code == 1
    document = json.loads(out)
    assert document["stacks"] == [
        {
            "stack": "payments",
            "account": "111122223333",
            "region": "eu-west-1",
            "error": None,
            "summary": {"error": 0, "warning": 0, "info": 0, "suppressed": 0},
        },
        {
            "stack": "search",
            "account": "222233334444",
            "region": None,
            "error": None,
            "summary": {"error": 1, "warning": 1, "info": 0, "suppressed": 0},
        },
    ]
    assert [(f["stack"], f["rule"], f["location"]["file"]) for f in document["findings"]] == [
        ("search", "KMS019", "kms/search.yaml"),
        ("search", "KMS001", "more/search-public.yaml"),
    ]
    assert document["summary"] == {"error": 1, "warning": 1, "info": 0, "suppressed": 0}
    assert document["format_version"] == 1


def test_lint_sarif_is_one_run_with_every_stacks_results(
    org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "lint.sarif"
    code, out, err = run(capsys, "lint", "--format", "sarif", "-o", str(report), "kms", "more")
    assert (code, out, err) == (1, "", "")
    document = json.loads(report.read_text(encoding="utf-8"))
    assert validation_errors(document) == []
    (sarif_run,) = document["runs"]
    assert "invocations" not in sarif_run  # nothing failed
    assert [
        (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
        for r in sarif_run["results"]
    ] == [("KMS019", "kms/search.yaml"), ("KMS001", "more/search-public.yaml")]


def test_lint_of_an_invalid_stack_reports_every_problem_and_lints_nothing(
    org: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(org / "kms" / "payments.yaml", PAYMENTS.replace("enabled: true}", "enabled: maybe}"))
    write(org / "more" / "search-public.yaml", SEARCH_PUBLIC.replace("public:", "index:"))
    code, out, err = run(capsys, "lint", "kms", "more")
    assert (code, out) == (1, "")
    assert [line.split(": error: ")[0] for line in err.splitlines()] == [
        "kms/payments.yaml:7:25",
        "more/search-public.yaml:4:3",
    ]


# A stack that could not be linted (lint --live), in each format


def failed_run() -> list[LintOutcome]:
    finding = Finding(
        rule="KMS008",
        severity=Severity.WARNING,
        title="Automatic key rotation is disabled on a key that KMS can rotate",
        key="k",
        message="rotation is off",
        path="keys.k.rotation.enabled",
    )
    return [
        LintOutcome(stack=Stack(name="one", region="eu-west-1"), findings=(finding,)),
        LintOutcome(
            stack=Stack(name="two", account="999999999999"),
            error="error: the manifest declares account 999999999999, but ...",
        ),
    ]


def test_a_failed_stack_is_reported_in_text_with_its_error_and_counted() -> None:
    assert render_text_by_stack(failed_run()).splitlines() == [
        "Stacks (2):",
        "  one  (account of the credentials), eu-west-1",
        "  two  999999999999, (Region of the run)",
        "",
        "=== stack one ===",
        "keys.k.rotation.enabled: warning: KMS008 [k] rotation is off",
        "1 finding: 0 errors, 1 warning, 0 info.",
        "",
        "=== stack two ===",
        "failed: error: the manifest declares account 999999999999, but ...",
        "",
        "Run: 2 stacks, 1 failed. 1 finding: 0 errors, 1 warning, 0 info.",
    ]


def test_a_failed_stack_has_its_error_and_no_summary_in_json() -> None:
    document = json.loads(render_json_by_stack(failed_run()))
    assert [(s["stack"], s["error"], s["summary"]) for s in document["stacks"]] == [
        ("one", None, {"error": 0, "warning": 1, "info": 0, "suppressed": 0}),
        ("two", "error: the manifest declares account 999999999999, but ...", None),
    ]


def test_a_failed_stack_makes_the_sarif_invocation_unsuccessful() -> None:
    outcomes = failed_run()
    document = json.loads(
        render_sarif(outcomes[0].findings, failures=["stack two failed: error: nope"])
    )
    assert validation_errors(document) == []
    assert document["runs"][0]["invocations"] == [
        {
            "executionSuccessful": False,
            "toolExecutionNotifications": [
                {"level": "error", "message": {"text": "stack two failed: error: nope"}}
            ],
        }
    ]


def validation_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
