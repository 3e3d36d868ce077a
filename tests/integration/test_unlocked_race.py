"""Two applies of one stack without a lock, against the moto server: the race ends clean.

The other run is simulated in this process by a hook on the KMS client kmsplan creates: it
creates a key with the same stack and name just before (or just after) this run's CreateKey.
Right after its CreateKey, apply finds that sibling and keeps the older key (or the one the
aliases and grants use): when that is the other run's, it releases its own — tagged
kmsplan:duplicate-of, ownership tags removed — and creates the aliases and grants on the kept
key. No key is ever scheduled for deletion. (Real concurrent processes:
test_concurrent_runs.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apply_support import (
    aliases,
    client,
    create_role,
    grant_names,
    hooked_clients,
    kmsplan,
    stack_keys,
    tags_of,
    write_manifest,
)

from kmsplan.aws.client import AwsClients
from kmsplan.aws.reader import read_live
from kmsplan.model import Stack

pytestmark = pytest.mark.integration

STACK = "raced"


def other_runs_key(endpoint: str, name: str) -> str:
    return str(
        client(endpoint).create_key(
            Tags=[
                {"TagKey": "kmsplan:stack", "TagValue": STACK},
                {"TagKey": "kmsplan:key", "TagValue": name},
                {"TagKey": "kmsplan:deletion-protection", "TagValue": "true"},
                {"TagKey": "kmsplan:deletion-window", "TagValue": "30"},
            ]
        )["KeyMetadata"]["KeyId"]
    )


def on_create_key(when: str, endpoint: str, made: list[str]) -> Any:
    """A hook that has the "other run" create its key `when` ("before"/"after") ours."""

    def install(kms: Any) -> None:
        def other_run(**_: Any) -> None:
            if not made:
                made.append(other_runs_key(endpoint, "orders"))

        kms.meta.events.register(f"{when}-call.kms.CreateKey", other_run)

    return install


def manifest(tmp_path: Path, endpoint: str) -> Path:
    grantee = create_role(endpoint, "app")
    return write_manifest(
        tmp_path / "stack.yaml",
        STACK,
        {
            "orders": {
                "aliases": ["alias/raced/orders"],
                "grants": [{"name": "app", "grantee": grantee, "operations": ["Decrypt"]}],
            }
        },
    )


def scheduled_for_deletion(endpoint: str) -> list[str]:
    kms = client(endpoint)
    return [
        k["KeyId"]
        for k in kms.list_keys()["Keys"]
        if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    ]


def test_a_key_another_run_created_first_is_kept_and_ours_released(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = manifest(tmp_path, endpoint)
    made: list[str] = []

    with hooked_clients(monkeypatch, on_create_key("before", endpoint, made)):
        code, _, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")

    [theirs] = made
    assert code == 0, err
    [kept] = stack_keys(endpoint, STACK)["orders"]
    assert kept["KeyId"] == theirs
    assert aliases(endpoint)["alias/raced/orders"] == theirs
    assert grant_names(endpoint, theirs) == ["kmsplan/app"]
    [ours] = [
        k["KeyId"]
        for k in client(endpoint).list_keys()["Keys"]
        if tags_of(client(endpoint), k["KeyId"]).get("kmsplan:duplicate-of") == theirs
    ]
    assert "kmsplan:stack" not in tags_of(client(endpoint), ours)
    assert grant_names(endpoint, ours) == []
    assert f"released key {ours} that this run created" in err
    assert scheduled_for_deletion(endpoint) == []
    # The next plan has nothing to do.
    code, out, _ = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
    assert (code, "No changes" in out) == (0, True), out


def test_a_key_another_run_created_after_ours_is_left_to_the_next_plan(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = manifest(tmp_path, endpoint)
    made: list[str] = []

    with hooked_clients(monkeypatch, on_create_key("after", endpoint, made)):
        code, _, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")

    [theirs] = made
    assert code == 0, err
    ours = aliases(endpoint)["alias/raced/orders"]
    assert ours != theirs
    assert {k["KeyId"] for k in stack_keys(endpoint, STACK)["orders"]} == {ours, theirs}

    # The next apply plans the release of the unused, younger key and carries it out.
    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")

    assert code == 0, out + err
    assert "« key.orders.duplicates will be released" in out
    assert [k["KeyId"] for k in stack_keys(endpoint, STACK)["orders"]] == [ours]
    assert tags_of(client(endpoint), theirs).get("kmsplan:duplicate-of") == ours
    assert scheduled_for_deletion(endpoint) == []


def test_the_reader_returns_every_live_key_carrying_a_name_with_its_creation_date(
    endpoint: str,
) -> None:
    first, second = other_runs_key(endpoint, "orders"), other_runs_key(endpoint, "orders")
    clients = AwsClients.create(profile=None, region="us-east-1", endpoint_url=endpoint)

    live = read_live(clients, Stack(name=STACK))

    assert sorted(k.key_id or "" for k in live.keys) == sorted([first, second])
    assert all(k.created and k.created.endswith("+00:00") for k in live.keys)
    assert live.warnings == ()


def test_without_tag_get_resources_apply_goes_on_and_the_next_plan_cleans_up(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The lookup after CreateKey is a safeguard: denied, it is skipped with a note.
    from botocore.awsrequest import AWSResponse

    path = manifest(tmp_path, endpoint)
    made: list[str] = []
    denied = b'{"__type": "AccessDeniedException", "Message": "no tag:GetResources (test)"}'

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield denied

    def deny(tagging: Any) -> None:
        tagging.meta.events.register_first(
            "before-send.resource-groups-tagging-api.GetResources",
            lambda **_: AWSResponse("http://127.0.0.1/", 400, {}, Raw()),
        )

    def both(clients_part: Any) -> None:
        if clients_part.meta.service_model.service_name == "kms":
            on_create_key("before", endpoint, made)(clients_part)
        else:
            deny(clients_part)

    with hooked_clients(monkeypatch, both, client_names=("kms", "tagging")):
        code, _, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")

    assert code == 0, err
    assert "could not look for keys other runs created (GetResources failed: AccessDenied" in err
    assert len(stack_keys(endpoint, STACK)["orders"]) == 2
    code, out, _ = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0
    assert "« key.orders.duplicates will be released" in out
    assert len(stack_keys(endpoint, STACK)["orders"]) == 1
    assert scheduled_for_deletion(endpoint) == []
