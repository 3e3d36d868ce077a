"""`kmsplan import` against the emulator. The guarantee: import, then plan of what it wrote
shows only adoptions whose only calls are TagResource — for every key type, disabled keys,
custom rotation periods, several aliases and oddly formatted policies; then apply, then the
plan is clean and every key is as it was, only tagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from apply_support import (
    ACCOUNT,
    REGION,
    ROOT,
    client,
    create_role,
    hooked_clients,
    kmsplan,
    tags_of,
)
from botocore.awsrequest import AWSResponse

from kmsplan.apply import WRITE_OPERATIONS
from kmsplan.manifest import load

pytestmark = pytest.mark.integration

# Odd but valid: another indentation, members out of the usual order, single-value lists,
# an account-id principal.
ODD_POLICY = (
    '{"Statement":[{"Resource":["*"],"Action":["kms:*"],"Principal":{"AWS":["ACCOUNT"]},'
    '"Effect":"Allow","Sid":"Root"}],\n      "Version":"2012-10-17"}'.replace("ACCOUNT", ACCOUNT)
)
TIDY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Id": "made-by-hand",
        "Statement": [
            {
                "Sid": "Admin",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    },
    indent=4,
)

KEY_TYPES: dict[str, dict[str, Any]] = {
    "symmetric": {"Description": "orders table"},
    "rsa-encrypt": {"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"},
    "rsa-sign": {"KeySpec": "RSA_3072", "KeyUsage": "SIGN_VERIFY"},
    "ecc-sign": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
    "ecc-p521": {"KeySpec": "ECC_NIST_P521", "KeyUsage": "SIGN_VERIFY"},
    "hmac": {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
}


def brownfield(endpoint: str) -> dict[str, str]:
    """Keys made outside kmsplan: one of every type, a disabled one, one rotated every 180
    days with three aliases, tags and a service's grant, each with its own policy text."""
    kms = client(endpoint)
    worker = create_role(endpoint, "worker")
    made: dict[str, str] = {}
    for label, params in KEY_TYPES.items():
        policy = ODD_POLICY if label == "symmetric" else TIDY_POLICY
        made[label] = kms.create_key(Policy=policy, **params)["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=f"alias/legacy/{label}", TargetKeyId=made[label])
    made["disabled"] = kms.create_key(Policy=TIDY_POLICY)["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=made["disabled"])
    rotated = kms.create_key(
        Policy=TIDY_POLICY,
        Description='payments: "v2"',
        Tags=[{"TagKey": "team", "TagValue": "payments"}, {"TagKey": "cost", "TagValue": "42"}],
    )["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=rotated, RotationPeriodInDays=180)
    for alias in ("alias/pay/main", "alias/pay/old", "alias/zz-other"):
        kms.create_alias(AliasName=alias, TargetKeyId=rotated)
    kms.create_grant(
        KeyId=rotated,
        GranteePrincipal=worker,
        Operations=["Decrypt"],
        Name="rds-instance",
        Constraints={"EncryptionContextSubset": {"db": "orders"}},
    )
    made["rotated"] = rotated
    return made


def state_of(endpoint: str) -> dict[str, Any]:
    """Everything import and adoption must leave alone, per key id (tags without kmsplan's)."""
    kms = client(endpoint)
    found: dict[str, Any] = {}
    for entry in kms.list_keys()["Keys"]:
        key_id = entry["KeyId"]
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        if metadata.get("KeyManager") == "AWS":
            continue
        rotation = None
        if metadata.get("KeySpec") == "SYMMETRIC_DEFAULT":
            status = kms.get_key_rotation_status(KeyId=key_id)
            rotation = (status["KeyRotationEnabled"], status.get("RotationPeriodInDays"))
        found[key_id] = {
            "state": metadata["KeyState"],
            "description": metadata.get("Description"),
            "spec": metadata.get("KeySpec"),
            "policy": kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"],
            "rotation": rotation,
            "grants": sorted(
                (g.get("Name", ""), g["GrantId"]) for g in kms.list_grants(KeyId=key_id)["Grants"]
            ),
            "tags": {k: v for k, v in tags_of(kms, key_id).items() if not k.startswith("kmsplan:")},
        }
    aliases = {
        a["AliasName"]: a.get("TargetKeyId")
        for a in kms.list_aliases()["Aliases"]
        if not a["AliasName"].startswith("alias/aws/")
    }
    return {"keys": found, "aliases": aliases}


def no_writes(seen: list[str]) -> Any:
    def install(kms: Any) -> None:
        def before_send(event_name: str, **_: Any) -> None:
            operation = event_name.rsplit(".", 1)[-1]
            if operation in WRITE_OPERATIONS:
                seen.append(operation)

        kms.meta.events.register_first("before-send.kms", before_send)

    return install


def reported_rotation_period(key_id: str, days: int) -> Any:
    """Answer GetKeyRotationStatus for `key_id` as KMS does, with its RotationPeriodInDays
    (the emulator leaves it out)."""

    def install(kms: Any) -> None:
        def before_send(event_name: str, request: Any, **_: Any) -> AWSResponse | None:
            if event_name.rsplit(".", 1)[-1] != "GetKeyRotationStatus":
                return None
            if json.loads(request.body or b"{}").get("KeyId") != key_id:
                return None
            body = {"KeyRotationEnabled": True, "RotationPeriodInDays": days}
            return AWSResponse("http://127.0.0.1/", 200, {}, _Raw(json.dumps(body).encode()))

        kms.meta.events.register_first("before-send.kms", before_send)

    return install


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def both(*installs: Any) -> Any:
    def install(kms: Any) -> None:
        for each in installs:
            each(kms)

    return install


def test_import_then_plan_shows_only_tag_resource_adoptions_then_apply_is_clean(
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = brownfield(endpoint)
    before = state_of(endpoint)
    out_dir = tmp_path / "imported"
    writes: list[str] = []
    period = reported_rotation_period(made["rotated"], 180)
    with hooked_clients(monkeypatch, both(no_writes(writes), period)):
        code, out, err = kmsplan(
            capsys, endpoint, "import", "--all", "--stack", "legacy", "--out", str(out_dir)
        )
    assert code == 0, out + err
    assert writes == []
    assert f"Wrote {len(made)} keys of account {ACCOUNT}, {REGION}" in out
    assert state_of(endpoint) == before

    # The files validate, and read like a person wrote them.
    stack = load([str(out_dir)])
    assert {k.adopt for k in stack.keys} == set(made.values())
    manifest = (out_dir / "legacy.yaml").read_text()
    assert manifest.startswith("# yaml-language-server: $schema=")
    assert "keys:\n  " in manifest
    assert "\n\n  legacy-symmetric:\n    adopt: " in manifest
    assert "  pay-main:\n" in manifest
    assert "    rotation: {enabled: true, period_days: 180}\n" in manifest
    assert '    description: "payments: \\"v2\\""\n' in manifest
    assert "      - alias/pay/main\n      - alias/pay/old\n      - alias/zz-other\n" in manifest
    assert "    # Grants not named kmsplan/<name> stay unmanaged" in manifest
    assert "rds-instance" in manifest and "encryption context subset db=orders" in manifest
    assert json.loads((out_dir / "policies" / "legacy-symmetric.json").read_text()) == (
        json.loads(ODD_POLICY)
    )

    with hooked_clients(monkeypatch, period):
        code, out, err = kmsplan(capsys, endpoint, "plan", str(out_dir), "--format", "json")
    assert code == 0, out + err
    document = json.loads(out)
    assert {c["action"] for c in document["changes"]} == {"adopt"}
    assert len(document["changes"]) == len(made)
    assert {c["operation"] for ch in document["changes"] for c in ch["calls"]} == {"TagResource"}
    assert all(len(ch["calls"]) == 1 for ch in document["changes"])

    with hooked_clients(monkeypatch, period):
        code, out, err = kmsplan(capsys, endpoint, "apply", str(out_dir), "--auto-approve")
        assert code == 0, out + err
        code, out, err = kmsplan(capsys, endpoint, "plan", str(out_dir), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (0, "No changes. KMS matches the manifests."), out
    assert state_of(endpoint) == before  # ids, policies byte for byte, grants, aliases...
    kms = client(endpoint)
    assert tags_of(kms, made["rotated"])["kmsplan:key"] == "pay-main"


def test_import_of_named_keys_writes_only_those(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    made = brownfield(endpoint)
    out_dir = tmp_path / "two"
    code, out, err = kmsplan(
        capsys,
        endpoint,
        "import",
        "alias/legacy/hmac",
        made["disabled"],
        "--stack",
        "two",
        "--out",
        str(out_dir),
    )
    assert code == 0, out + err
    stack = load([str(out_dir)])
    assert sorted(k.name for k in stack.keys) == sorted(["legacy-hmac", made["disabled"]])
    assert {k.name: k.enabled for k in stack.keys}[made["disabled"]] is False
    code, out, err = kmsplan(capsys, endpoint, "plan", str(out_dir))
    assert code == 0, out + err
    assert "Plan: 0 to add, 0 to change, 0 to delete, 2 to adopt, 0 blocked." in out


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("1234abcd-12ab-34cd-56ef-1234567890ab", "no such key in account"),
        ("alias/aws/ebs", "an AWS managed key (KeyManager=AWS)"),
        (
            f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "a key of account 123456789012, Region eu-west-1; this import reads",
        ),
    ],
)
def test_import_refuses_what_it_cannot_adopt_and_writes_nothing(
    ref: str, words: str, tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client(endpoint).describe_key(KeyId="alias/aws/ebs")  # the emulator makes it on demand
    out_dir = tmp_path / "none"
    code, out, err = kmsplan(capsys, endpoint, "import", ref, "--stack", "x", "--out", str(out_dir))
    assert code == 1, out + err
    assert "cannot import; nothing was written" in err and words in err
    assert not out_dir.exists()


def test_import_refuses_a_key_of_another_stack(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    made = brownfield(endpoint)
    first = tmp_path / "first"
    code, out, err = kmsplan(
        capsys, endpoint, "import", made["hmac"], "--stack", "one", "--out", str(first)
    )
    assert code == 0, out + err
    code, out, err = kmsplan(capsys, endpoint, "apply", str(first), "--auto-approve")
    assert code == 0, out + err
    code, out, err = kmsplan(
        capsys, endpoint, "import", made["hmac"], "--stack", "two", "--out", str(tmp_path / "b")
    )
    assert code == 1
    assert f"key {made['hmac']} is key.legacy-hmac of stack one already" in err
    assert not (tmp_path / "b").exists()
    # --all leaves it out, saying so.
    code, out, err = kmsplan(
        capsys, endpoint, "import", "--all", "--stack", "two", "--out", str(tmp_path / "c")
    )
    assert code == 0, out + err
    assert f"skipped: key {made['hmac']} is key.legacy-hmac of stack one already" in err
    assert made["hmac"] not in (tmp_path / "c" / "two.yaml").read_text()


def test_import_never_overwrites_without_force(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    made = brownfield(endpoint)
    out_dir = tmp_path / "again"
    args = ("import", made["hmac"], "--stack", "again", "--out", str(out_dir))
    assert kmsplan(capsys, endpoint, *args)[0] == 0
    (out_dir / "again.yaml").write_text("# edited by hand\n")
    code, _, err = kmsplan(capsys, endpoint, *args)
    assert code == 1
    assert "again.yaml, policies/legacy-hmac.json already exist(s); nothing was written" in err
    assert (out_dir / "again.yaml").read_text() == "# edited by hand\n"
    assert kmsplan(capsys, endpoint, *args, "--force")[0] == 0
    assert (out_dir / "again.yaml").read_text().startswith("# yaml-language-server")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--stack", "x"),
            "error: name the keys to import (KEYREF...: key ids, ARNs or aliases), or pass --all",
        ),
        (
            ("alias/a", "--stack", "no good"),
            'error: --stack "no good" is not a valid stack name (1-64 letters, digits, "_" or '
            '"-", starting with a letter or digit)',
        ),
    ],
)
def test_import_refuses_bad_arguments_before_reading_anything(
    args: tuple[str, ...],
    message: str,
    tmp_path: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out_dir = tmp_path / "none"
    code, out, err = kmsplan(capsys, endpoint, "import", *args, "--out", str(out_dir))
    assert (code, out, err) == (1, "", message + "\n")
    assert not out_dir.exists()


def test_a_key_pending_deletion_is_imported_only_when_named_and_says_so(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kms = client(endpoint)
    key_id = kms.create_key(Policy=TIDY_POLICY)["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    code, out, err = kmsplan(
        capsys, endpoint, "import", "--all", "--stack", "p", "--out", str(tmp_path / "all")
    )
    assert code == 1, out + err
    assert f"skipped: key {key_id} is pending deletion (name it to import it" in err
    assert "error: no key to import in account 123456789012, us-east-1; nothing was written" in err
    assert not (tmp_path / "all").exists()

    out_dir = tmp_path / "named"
    code, out, err = kmsplan(
        capsys, endpoint, "import", key_id, "--stack", "p", "--out", str(out_dir)
    )
    assert code == 0, out + err
    manifest = (out_dir / "p.yaml").read_text()
    assert "  # Pending deletion until " in manifest
    assert "adopting it cancels the deletion (it stays disabled)." in manifest
    code, out, err = kmsplan(capsys, endpoint, "plan", str(out_dir))
    assert code == 0, out + err
    assert "calls: CancelKeyDeletion, TagResource" in out
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
