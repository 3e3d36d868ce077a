"""A saved plan edited after `plan --out` wrote it is refused by `apply --plan` before any AWS
client exists: every field of the document, one at a time."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import (
    ACCOUNT,
    NOW,
    desired_key,
    grant,
    live_key,
    live_state,
    never_used,
    stack,
    user_policy,
)

from kmsplan.cli import main
from kmsplan.lint.finding import Finding, Severity
from kmsplan.model import Location, Role, Rotation
from kmsplan.plan import planfile
from kmsplan.plan.differ import diff
from kmsplan.plan.types import Action, GateOptions, Plan, Resource

CHECKSUM_REFUSAL = (
    "plan document: the content does not match its checksum: the plan was changed after "
    "kmsplan plan --out saved it; plan again. Nothing was changed"
)


def saved_plan() -> Plan:
    """A plan with a create (alias, grant, policy), an update, a blocked deletion, findings,
    cost and a fingerprint: every member of the document has something in it."""
    orders = desired_key(
        "orders",
        aliases=["alias/payments/orders"],
        rotation=Rotation(enabled=True, period_days=365),
        policy=user_policy(f"arn:aws:iam::{ACCOUNT}:role/app"),
        grants=[grant("lambda")],
        tags={"team": "payments"},
    )
    new = desired_key(
        "invoices",
        aliases=["alias/payments/invoices"],
        policy=user_policy(f"arn:aws:iam::{ACCOUNT}:role/billing"),
        grants=[grant("g")],
    )
    live = dataclasses.replace(
        live_state(
            live_key(dataclasses.replace(orders, description="old")),
            live_key(desired_key("legacy"), protected=False),
        ),
        last_usage={"legacy": never_used()},
    )
    plan = diff(stack(new, orders), live, GateOptions(), now=NOW)
    return dataclasses.replace(
        plan,
        fingerprint=planfile.fingerprint(live),
        kmsplan_version="0.1.0",
        warnings=("a warning",),
        findings=(
            Finding(
                rule="KMS009",
                severity=Severity.WARNING,
                title="t",
                key="orders",
                message="m",
                path="keys.orders.rotation",
                location=Location(file="m.yaml", line=3, column=5),
            ),
        ),
        unmanaged=("a note",),
    )


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(planfile.dumps(saved_plan()))
    return loaded


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, (*path, i))
    elif path[-1:] != ("checksum",):
        yield path


_OTHER_ENUM = {
    "action": {a.value: next(b.value for b in Action if b is not a) for a in Action},
    "resource": {r.value: next(s.value for s in Resource if s is not r) for r in Resource},
}


def tampered(value: Any, name: Any) -> Any:
    """Another value of the same type (a valid enum member for enums)."""
    if name in _OTHER_ENUM and value in _OTHER_ENUM[name]:
        return _OTHER_ENUM[name][value]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 1.5
    if isinstance(value, str):
        return value + "x"
    return {"tampered": True}  # None: an object fits wherever null does


def set_at(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


def get_at(doc: dict[str, Any], path: tuple[Any, ...]) -> Any:
    target: Any = doc
    for step in path:
        target = target[step]
    return target


PATHS = list(leaves(document()))


def test_every_member_of_the_document_is_covered() -> None:
    top = {path[0] for path in PATHS}
    assert top == set(document()) - {"checksum"}
    assert len(PATHS) > 150
    for needle in ("gate", "calls", "fingerprint", "blocks", "PendingWindowInDays", "address"):
        assert any(needle in path for path in PATHS), needle


def test_an_untouched_saved_plan_loads_and_validates() -> None:
    assert planfile.loads(planfile.dumps(saved_plan())) == saved_plan()


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    from kmsplan.aws.client import AwsClients

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no AWS client may be created for a tampered plan")

    monkeypatch.setattr(AwsClients, "create", refuse)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: ".".join(map(str, p)))
def test_apply_refuses_a_plan_with_any_field_changed(
    path: tuple[Any, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str], no_aws: None
) -> None:
    doc = document()
    set_at(doc, path, tampered(get_at(doc, path), path[-1]))
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    code = main(["apply", "--plan", str(saved), "--auto-approve"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    if path == ("format_version",):  # an unknown format is refused as such, checksum unread
        assert err == (
            f"error: {saved}: plan document: unsupported format_version 3 (this kmsplan reads "
            "format_version 2); run kmsplan plan again\n"
        )
    else:
        assert err == f"error: {saved}: {CHECKSUM_REFUSAL}\n"


@pytest.mark.parametrize(
    "edit",
    ["drop-checksum", "drop-change", "duplicate-change", "clear-blocks", "drop-fingerprint-entry"],
)
def test_apply_refuses_a_plan_with_members_added_or_removed(
    edit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_aws: None
) -> None:
    doc = document()
    if edit == "drop-checksum":
        del doc["checksum"]
    elif edit == "drop-change":
        doc["changes"].pop()
    elif edit == "duplicate-change":
        doc["changes"].append(doc["changes"][0])
    elif edit == "clear-blocks":
        for change in doc["changes"]:
            change["gate"] = {"status": "allowed", "blocks": []}
    else:
        doc["fingerprint"].popitem()
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(doc), encoding="utf-8")
    code = main(["apply", "--plan", str(saved), "--auto-approve"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    if edit == "drop-checksum":
        assert err == (
            f"error: {saved}: plan document: no checksum: save the plan with kmsplan plan "
            "--out. Nothing was changed\n"
        )
    else:
        assert err == f"error: {saved}: {CHECKSUM_REFUSAL}\n"


# ---- a saved run of several stacks: one checksum over the whole file --------------------------


def other_stack_plan() -> Plan:
    plan = diff(
        stack(desired_key("a"), name="billing"), live_state(stack_name="billing"), GateOptions()
    )
    return dataclasses.replace(
        plan,
        account_id="222233334444",
        role=Role(arn="arn:aws:iam::222233334444:role/x", external_id="ext", session_name="s"),
        fingerprint={"account": "0" * 64},
        kmsplan_version="0.1.0",
    )


def run_document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(planfile.dumps_run([saved_plan(), other_stack_plan()]))
    return loaded


RUN_PATHS = list(leaves(run_document()))


def test_every_member_of_a_saved_run_is_covered() -> None:
    assert {path[0] for path in RUN_PATHS} == set(run_document()) - {"checksum"}
    assert len(RUN_PATHS) > len(PATHS)
    for needle in ("summary", "status", "role", "external_id", "PendingWindowInDays"):
        assert any(needle in path for path in RUN_PATHS), needle


@pytest.mark.parametrize("path", RUN_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_apply_refuses_a_saved_run_with_any_field_changed(
    path: tuple[Any, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str], no_aws: None
) -> None:
    doc = run_document()
    set_at(doc, path, tampered(get_at(doc, path), path[-1]))
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    code = main(["apply", "--plan", str(saved), "--auto-approve"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    if path == ("format_version",):
        assert err == (
            f"error: {saved}: plan document: unsupported format_version 3 (this kmsplan reads "
            "format_version 2); run kmsplan plan again\n"
        )
    else:
        assert err == f"error: {saved}: {CHECKSUM_REFUSAL}\n"


def test_the_checksum_is_over_the_canonical_content_not_the_layout(tmp_path: Path) -> None:
    doc = document()
    saved = tmp_path / "plan.json"
    # Reordered members and another indentation: the same content, still accepted.
    saved.write_text(json.dumps(dict(reversed(list(doc.items())))), encoding="utf-8")
    assert planfile.read(saved) == saved_plan()
    assert doc["checksum"] == planfile.checksum(doc)
    assert doc["checksum"].startswith("sha256:") and len(doc["checksum"]) == 7 + 64


def test_apply_help_says_a_saved_plan_is_judged_with_applys_own_flags() -> None:
    from click.testing import CliRunner

    from kmsplan.cli import cli

    result = CliRunner().invoke(cli, ["apply", "--help"], terminal_width=100)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert (
        "With --plan FILE (instead of PATH...), applies a plan saved by `kmsplan plan --out`: "
        "only if the file is unchanged (its checksum), live KMS still matches it, and the "
        "safety gate, run again against live KMS with the gate flags given to this command, "
        "blocks nothing. The flags and verdicts stored in the file do not count: a deletion "
        "needs --allow-delete here too."
    ) in text
