"""One `kmsplan plan` of several stacks in two accounts and two Regions, against the moto
server (one state per account and Region; STS AssumeRole into another account's role lands
the calls there): each stack is planned on its own, a stack that fails does not hide the
others, and the exit code speaks for the run. `--format json` prints one run document, and
`--out` saves one file for the run, with each stack's lock held while it is read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from apply_support import ACCOUNT, client, kmsplan, write_manifest
from lock_support import held_by_another_run, lock_objects, make_bucket

from kmsplan.plan import planfile

pytestmark = pytest.mark.integration

OTHER = "222233334444"
ROLE = f"arn:aws:iam::{OTHER}:role/x"
# What a run of these three stacks says on stderr before it reads anything.
PLANNING = "Planning 3 stacks: east, other, west.\n"


def keys_in(endpoint: str, *, region: str, role: bool = False) -> list[str]:
    """The kmsplan:stack of every key in an account and Region."""
    if role:
        creds = client(endpoint, "sts").assume_role(RoleArn=ROLE, RoleSessionName="test")
        c = creds["Credentials"]
        kms: Any = boto3.client(
            "kms",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
        )
    else:
        kms = boto3.client("kms", endpoint_url=endpoint, region_name=region)
    stacks = []
    for key in kms.list_keys()["Keys"]:
        tags = {
            t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]
        }
        stacks.append(tags.get("kmsplan:stack", ""))
    return sorted(stacks)


@pytest.fixture
def org(tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]) -> Path:
    """Three stacks in one folder, each applied on its own: two Regions, two accounts."""
    folder = tmp_path / "kms"
    folder.mkdir()
    write_manifest(folder / "east.yaml", "east", {"a": {}}, account=ACCOUNT, region="us-east-1")
    write_manifest(folder / "west.yaml", "west", {"b": {}, "c": {}}, region="eu-west-1")
    write_manifest(
        folder / "other.yaml", "other", {"d": {}}, account=OTHER, region="us-east-1", role=ROLE
    )
    for name in ("east", "west", "other"):
        code, out, err = kmsplan(
            capsys, endpoint, "apply", str(folder / f"{name}.yaml"), "--auto-approve"
        )
        assert code == 0, out + err
    return folder


def test_one_plan_of_three_stacks_in_two_accounts_and_regions_is_clean(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert keys_in(endpoint, region="us-east-1") == ["east"]
    assert keys_in(endpoint, region="eu-west-1") == ["west", "west"]
    assert keys_in(endpoint, region="us-east-1", role=True) == ["other"]
    code, out, err = kmsplan(capsys, endpoint, "plan", str(org), "--detailed-exitcode")
    assert (code, err) == (0, PLANNING), out + err
    lines = out.splitlines()
    assert lines[:4] == [
        "Stacks (3):",
        f"  east  {ACCOUNT}, us-east-1",
        f"  other  {OTHER}, us-east-1",
        "  west  (account of the credentials), eu-west-1",
    ]
    assert f"kmsplan plan for stack other, account {OTHER}, us-east-1" in lines
    assert f"kmsplan plan for stack west, account {ACCOUNT}, eu-west-1" in lines
    assert lines[-1] == ("Run: 3 stacks: 0 with changes, 0 blocked, 0 failed, 3 without changes.")


def test_a_change_in_one_stack_is_exit_2_and_markdown_has_one_table(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_manifest(org / "west.yaml", "west", {"b": {}, "c": {}, "new": {}}, region="eu-west-1")
    code, out, _ = kmsplan(
        capsys, endpoint, "plan", str(org), "--detailed-exitcode", "--format", "markdown"
    )
    assert code == 2, out
    assert "| `west` | (account of the credentials), eu-west-1 | Plan: 1 to add" in out
    assert "Run: 3 stacks: 1 with changes, 0 blocked, 0 failed, 2 without changes." in out
    assert "<details>" not in out  # three stacks stay unfolded
    assert keys_in(endpoint, region="eu-west-1") == ["west", "west"]  # a plan writes nothing


def test_a_stack_with_a_wrong_account_fails_while_the_others_are_planned(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_manifest(org / "east.yaml", "east", {"a": {}}, account="999999999999", region="us-east-1")
    code, out, err = kmsplan(capsys, endpoint, "plan", str(org), "--detailed-exitcode")
    assert code == 1, out + err
    assert "=== stack east ===" in out
    assert (
        "failed: error: the manifests declare account 999999999999 (account:), but the "
        f"credentials are for account {ACCOUNT}"
    ) in out
    assert f"kmsplan plan for stack other, account {OTHER}, us-east-1" in out
    assert f"kmsplan plan for stack west, account {ACCOUNT}, eu-west-1" in out
    assert out.splitlines()[-1] == (
        "Run: 3 stacks: 0 with changes, 0 blocked, 1 failed, 2 without changes."
    )


SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text("utf-8")
)


def test_json_of_several_stacks_is_one_run_document_that_validates(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_manifest(org / "west.yaml", "west", {"b": {}, "c": {}, "new": {}}, region="eu-west-1")
    code, out, err = kmsplan(
        capsys, endpoint, "plan", str(org), "--format", "json", "--detailed-exitcode"
    )
    assert (code, err) == (2, PLANNING), out + err
    document = json.loads(out)  # one document, nothing else on stdout
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert (document["format_version"], document["kind"]) == (2, "run")
    assert document["summary"] == {
        "stacks": 3,
        "with_changes": 1,
        "blocked": 0,
        "failed": 0,
        "without_changes": 2,
    }
    east, other, west = document["stacks"]
    assert [(s["stack"], s["status"], s["account"], s["region"]) for s in document["stacks"]] == [
        ("east", "no_changes", ACCOUNT, "us-east-1"),
        ("other", "no_changes", OTHER, "us-east-1"),
        ("west", "changes", ACCOUNT, "eu-west-1"),
    ]
    assert other["role"] == {"arn": ROLE, "external_id": None, "session_name": None}
    assert other["plan"]["role"] == other["role"] and east["role"] is None
    assert [c["address"] for c in west["plan"]["changes"]] == ["key.new"]
    assert west["plan"]["summary"]["add"] == 1
    assert keys_in(endpoint, region="eu-west-1") == ["west", "west"]  # a plan writes nothing


def test_json_of_a_run_with_a_failed_stack_carries_its_error(
    org: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_manifest(org / "east.yaml", "east", {"a": {}}, account="999999999999", region="us-east-1")
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(org), "--format", "json")
    assert code == 1
    document = json.loads(out)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    east = document["stacks"][0]
    assert (east["status"], east["account"], east["plan"]) == ("failed", "999999999999", None)
    assert east["error"].startswith(
        "error: the manifests declare account 999999999999 (account:), but the credentials "
        f"are for account {ACCOUNT}"
    )
    assert document["summary"]["failed"] == 1 and document["summary"]["without_changes"] == 2


def test_out_saves_one_file_for_the_run_whose_plans_apply_stack_by_stack(
    org: Path, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_manifest(
        org / "other.yaml",
        "other",
        {"d": {}, "e": {}},
        account=OTHER,
        region="us-east-1",
        role=ROLE,
    )
    saved = tmp_path / "run.json"
    code, out, err = kmsplan(capsys, endpoint, "plan", str(org), "--out", str(saved))
    assert code == 0, out + err
    assert err == PLANNING + f"Saved the plans of 3 stacks to {saved}.\n"
    assert out.splitlines()[-1] == (
        "Run: 3 stacks: 1 with changes, 0 blocked, 0 failed, 2 without changes."
    )
    plans = planfile.read_saved(saved)
    assert [(p.stack, p.account_id, p.region) for p in plans] == [
        ("east", ACCOUNT, "us-east-1"),
        ("other", OTHER, "us-east-1"),
        ("west", ACCOUNT, "eu-west-1"),
    ]
    assert plans[1].role is not None and plans[1].role.arn == ROLE
    # The file is the run's JSON document with one checksum over all of it.
    document = json.loads(saved.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document.pop("checksum") == planfile.checksum(document)
    _, printed, _ = kmsplan(capsys, endpoint, "plan", str(org), "--format", "json")
    assert document == json.loads(printed)
    # Each stack's plan is a saved plan of its own: the other account's, applied with its role.
    single = tmp_path / "other.json"
    planfile.write(single, plans[1])
    code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(single), "--auto-approve")
    assert code == 0, out + err
    assert keys_in(endpoint, region="us-east-1", role=True) == ["other", "other"]
    assert keys_in(endpoint, region="us-east-1") == ["east"]


def saved_run_with_changes(org: Path, endpoint: str, saved: Path, capsys: Any) -> None:
    """A saved run with a key to add in west (eu-west-1) and in other (the role's account)."""
    write_manifest(org / "west.yaml", "west", {"b": {}, "c": {}, "new": {}}, region="eu-west-1")
    write_manifest(
        org / "other.yaml",
        "other",
        {"d": {}, "d2": {}},
        account=OTHER,
        region="us-east-1",
        role=ROLE,
    )
    assert kmsplan(capsys, endpoint, "plan", str(org), "--out", str(saved))[0] == 0


def test_apply_plan_of_a_saved_run_applies_every_stack_after_checking_each(
    org: Path, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "run.json"
    saved_run_with_changes(org, endpoint, saved, capsys)
    code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")
    assert code == 0, out + err
    assert "Run: 3 stacks: 2 with changes, 0 blocked, 0 failed, 1 without changes." in out
    assert "  east: no changes" in out
    assert "  other: Apply complete: 1 added" in out
    assert "  west: Apply complete: 1 added" in out
    assert keys_in(endpoint, region="eu-west-1") == ["west"] * 3
    assert keys_in(endpoint, region="us-east-1", role=True) == ["other"] * 2
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(org), "--detailed-exitcode")
    assert code == 0, out


def test_apply_plan_of_a_saved_run_refuses_a_stale_stack_and_applies_the_others(
    org: Path, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "run.json"
    saved_run_with_changes(org, endpoint, saved, capsys)
    # Out of band, after the plan was saved: west's live state changes.
    west = boto3.client("kms", endpoint_url=endpoint, region_name="eu-west-1")
    key = next(
        k["KeyId"]
        for k in west.list_keys()["Keys"]
        if {"TagKey": "kmsplan:key", "TagValue": "b"}
        in west.list_resource_tags(KeyId=k["KeyId"])["Tags"]
    )
    west.update_key_description(KeyId=key, Description="changed by hand")
    code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")
    assert code == 1, out + err
    assert f"  west: not applied: error: stale plan: live KMS changed since {saved}" in err
    assert "  other: Apply complete: 1 added" in err
    assert keys_in(endpoint, region="eu-west-1") == ["west", "west"]
    assert keys_in(endpoint, region="us-east-1", role=True) == ["other"] * 2


def test_fail_fast_refuses_a_saved_run_with_a_stale_stack_before_any_change(
    org: Path, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "run.json"
    saved_run_with_changes(org, endpoint, saved, capsys)
    # A stack's Region edited in the saved run: the checksum refuses the whole file.
    text = saved.read_text()
    saved.write_text(text.replace('"eu-west-1"', '"eu-west-2"', 1))
    code, out, err = kmsplan(
        capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve", "--fail-fast"
    )
    assert (code, out) == (1, "")
    assert "does not match its checksum" in err
    saved.write_text(text)
    boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1").create_key(
        Tags=[
            {"TagKey": "kmsplan:stack", "TagValue": "east"},
            {"TagKey": "kmsplan:key", "TagValue": "late"},
        ]
    )  # east is stale now
    code, out, err = kmsplan(
        capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve", "--fail-fast"
    )
    assert code == 1, out + err
    assert "refusing to apply: --fail-fast, and 1 stack(s) cannot be applied (east)" in err
    assert keys_in(endpoint, region="eu-west-1") == ["west", "west"]
    assert keys_in(endpoint, region="us-east-1", role=True) == ["other"]


def test_out_is_refused_when_a_stack_failed_and_nothing_is_written(
    org: Path, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_manifest(org / "east.yaml", "east", {"a": {}}, account="999999999999", region="us-east-1")
    write_manifest(org / "west.yaml", "west", {"b": {}, "c": {}, "new": {}}, region="eu-west-1")
    saved = tmp_path / "run.json"
    code, out, err = kmsplan(
        capsys, endpoint, "plan", str(org), "--out", str(saved), "--format", "json"
    )
    assert code == 1
    assert not saved.exists()
    assert err == PLANNING + (
        f"error: not saving the run to {saved}: 1 of 3 stacks failed to plan (east), and a "
        "saved run covers every stack; fix them and plan again, or save each stack's plan on "
        "its own. Nothing was written\n"
    )
    assert json.loads(out)["summary"]["failed"] == 1  # the report is still printed
    assert keys_in(endpoint, region="eu-west-1") == ["west", "west"]


def test_out_holds_each_stacks_lock_while_it_reads(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_bucket(endpoint)
    folder = tmp_path / "kms"
    folder.mkdir()
    write_manifest(folder / "east.yaml", "east", {"a": {}}, region="us-east-1", lock=url)
    write_manifest(folder / "west.yaml", "west", {"b": {}}, region="eu-west-1", lock=url)
    store, holder = held_by_another_run(endpoint, url, stack="east", region="us-east-1")
    saved = tmp_path / "run.json"

    plain, _, _ = kmsplan(capsys, endpoint, "plan", str(folder))
    refused, out, err = kmsplan(capsys, endpoint, "plan", str(folder), "--out", str(saved))
    assert plain == 0  # a plain plan reads without the lock
    assert refused == 1 and not saved.exists()
    assert "=== stack east ===" in out and f"lock id {holder.id}" in out
    assert "failed to plan (east)" in err
    assert "kmsplan plan for stack west" in out  # the other stack is still planned

    assert store.delete(holder.id)
    code, _, err = kmsplan(capsys, endpoint, "plan", str(folder), "--out", str(saved))
    assert code == 0, err
    assert [p.stack for p in planfile.read_saved(saved)] == ["east", "west"]
    assert lock_objects(endpoint) == []


def test_an_invalid_lock_url_with_several_stacks_is_refused_before_anything_is_read(
    org: Path, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "run.json"
    code, out, err = kmsplan(
        capsys, endpoint, "plan", str(org), "--out", str(saved), "--lock", "ftp://somewhere"
    )
    assert (code, out) == (1, "")
    assert err == (
        "error: invalid lock URL 'ftp://somewhere': expected s3://BUCKET/PREFIX, "
        "dynamodb://TABLE, or none for no lock\n"
    )
    assert not saved.exists()
