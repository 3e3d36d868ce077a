"""`released:` against the emulator: the key loses kmsplan's tags and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from apply_support import (
    admin_policy,
    aliases,
    client,
    create_role,
    grant_names,
    key_id,
    kmsplan,
    tags_of,
    write_manifest,
)

pytestmark = pytest.mark.integration


def test_release_untags_the_key_and_leaves_policy_aliases_and_grants(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reader = create_role(endpoint, "reader")
    archive = {
        "aliases": ["alias/rel/archive"],
        "policy": admin_policy(),
        "tags": {"team": "data"},
        "grants": [{"name": "reader", "grantee": reader, "operations": ["Decrypt"]}],
    }
    path = write_manifest(tmp_path / "m.yaml", "rel", {"orders": {}, "archive": archive})
    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err
    kms = client(endpoint)
    archive_id = key_id(endpoint, "rel", "archive")
    policy_before = kms.get_key_policy(KeyId=archive_id, PolicyName="default")["Policy"]
    grants_before = grant_names(endpoint, archive_id)

    write_manifest(tmp_path / "m.yaml", "rel", {"orders": {}}, released=["archive"])
    code, out, err = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
    assert code == 2, out + err
    assert "« key.archive will be released" in out
    assert "Plan: 0 to add, 0 to change, 0 to delete, 1 to release, 0 blocked." in out
    code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
    assert code == 0, out + err

    assert tags_of(kms, archive_id) == {"team": "data"}
    metadata = kms.describe_key(KeyId=archive_id)["KeyMetadata"]
    assert metadata["KeyState"] == "Enabled"
    assert kms.get_key_policy(KeyId=archive_id, PolicyName="default")["Policy"] == policy_before
    assert grant_names(endpoint, archive_id) == grants_before == ["kmsplan/reader"]
    assert aliases(endpoint)["alias/rel/archive"] == archive_id

    # The entry may stay: the next plan is clean, with a warning.
    code, out, err = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
    assert code == 0, out + err
    assert "released: archive: no live key of stack rel carries this name" in out + err
