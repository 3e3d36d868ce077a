"""A stack's `role:`: kmsplan assumes it (STS AssumeRole with the run's credentials) and plans
and applies in the role's account; the account guard checks the assumed identity. The moto
server keeps one state per account: calls made with the role's credentials land in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from apply_support import REGION, client, hooked_clients, kmsplan, write_manifest

from kmsplan.aws.client import is_session_of

pytestmark = pytest.mark.integration

OTHER = "222233334444"
ROLE = f"arn:aws:iam::{OTHER}:role/x"


def role_client(endpoint: str, service: str = "kms", session: str = "test") -> Any:
    answer = client(endpoint, "sts").assume_role(RoleArn=ROLE, RoleSessionName=session)
    c = answer["Credentials"]
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


def stack_tags(kms: Any) -> list[dict[str, str]]:
    return [
        {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=k["KeyId"])["Tags"]}
        for k in kms.list_keys()["Keys"]
    ]


def test_a_stack_with_a_role_is_applied_in_the_roles_account_and_plans_clean(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = write_manifest(
        tmp_path / "m.yaml",
        "org",
        {"a": {"description": "A"}},
        account=OTHER,
        role=ROLE,
        session_name="kmsplan-test",
    )
    callers: list[str] = []

    def install(sts: Any) -> None:
        def after_call(parsed: Any = None, **_: Any) -> None:
            callers.append(str(parsed.get("Arn", "")))

        sts.meta.events.register("after-call.sts.GetCallerIdentity", after_call)

    with hooked_clients(monkeypatch, install, client_names=("sts",)):
        code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 0, out + err
    # Every call was made as the role: the account guard saw the assumed identity.
    assert callers and all(
        c == f"arn:aws:sts::{OTHER}:assumed-role/x/kmsplan-test" for c in callers
    ), callers
    assert [t["kmsplan:stack"] for t in stack_tags(role_client(endpoint))] == ["org"]
    assert client(endpoint).list_keys()["Keys"] == []  # nothing in the base account
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(manifest), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (0, "No changes. KMS matches the manifests.")


def test_a_saved_plan_of_a_stack_with_a_role_is_applied_with_that_role(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = write_manifest(
        tmp_path / "m.yaml",
        "org",
        {"a": {"description": "A"}},
        account=OTHER,
        role=ROLE,
        external_id="org-7f3a",
    )
    saved = tmp_path / "plan.json"
    code, out, err = kmsplan(capsys, endpoint, "plan", str(manifest), "--out", str(saved))
    assert code == 0, out + err
    document = json.loads(saved.read_text(encoding="utf-8"))
    assert (document["account_id"], document["role"]) == (
        OTHER,
        {"arn": ROLE, "external_id": "org-7f3a", "session_name": None},
    )
    callers: list[str] = []

    def install(sts: Any) -> None:
        def after_call(parsed: Any = None, **_: Any) -> None:
            callers.append(str(parsed.get("Arn", "")))

        sts.meta.events.register("after-call.sts.GetCallerIdentity", after_call)

    with hooked_clients(monkeypatch, install, client_names=("sts",)):
        code, out, err = kmsplan(capsys, endpoint, "apply", "--plan", str(saved), "--auto-approve")
    assert code == 0, out + err
    # The account guard saw the role's identity (session kmsplan-<stack>), not the base one.
    assert callers and set(callers) == {f"arn:aws:sts::{OTHER}:assumed-role/x/kmsplan-org"}
    assert [t["kmsplan:stack"] for t in stack_tags(role_client(endpoint))] == ["org"]
    assert client(endpoint).list_keys()["Keys"] == []  # nothing in the base account
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(manifest), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (0, "No changes. KMS matches the manifests.")


def test_a_caller_that_already_is_the_role_is_not_assumed_again(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A CI job that assumed the role itself (OIDC): its session is used as it is.
    sts = role_client(endpoint, "sts", session="ci-job")
    credentials = sts._request_signer._credentials.get_frozen_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials.token)
    manifest = write_manifest(tmp_path / "m.yaml", "org", {"a": {}}, role=ROLE)
    callers: list[str] = []

    def install(sts: Any) -> None:
        def after_call(parsed: Any = None, **_: Any) -> None:
            callers.append(str(parsed.get("Arn", "")))

        sts.meta.events.register("after-call.sts.GetCallerIdentity", after_call)

    with hooked_clients(monkeypatch, install, client_names=("sts",)):
        code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 0, out + err
    assert set(callers) == {f"arn:aws:sts::{OTHER}:assumed-role/x/ci-job"}
    assert len(stack_tags(role_client(endpoint))) == 1


def test_a_stack_without_a_role_runs_with_the_base_credentials(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", "org", {"a": {}})
    code, out, err = kmsplan(capsys, endpoint, "apply", str(manifest), "--auto-approve")
    assert code == 0, out + err
    assert len(client(endpoint).list_keys()["Keys"]) == 1
    assert role_client(endpoint).list_keys()["Keys"] == []


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        (f"arn:aws:sts::{OTHER}:assumed-role/x/session", True),
        (f"arn:aws:sts::{OTHER}:assumed-role/y/session", False),
        ("arn:aws:sts::111122223333:assumed-role/x/session", False),
        (f"arn:aws:iam::{OTHER}:user/x", False),
        ("", False),
    ],
)
def test_a_session_of_the_role_is_told_by_account_and_role_name(
    caller: str, expected: bool
) -> None:
    assert is_session_of(caller, ROLE) is expected
    assert is_session_of(caller, f"arn:aws:iam::{OTHER}:role/team/path/x") is expected
