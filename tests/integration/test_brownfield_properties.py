"""Property test of ownership in a brownfield account, against the moto server: a manifest
that creates keys, adopts existing ones and releases others changes nothing outside its
claims. Foreign keys stay exactly as they were; released keys lose only kmsplan's tags;
adopted keys keep their ids; and the plan after the apply is clean."""

from __future__ import annotations

import json
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from apply_support import admin_policy, client, kmsplan, tags_of, write_manifest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

STACK = "mix"
ROLES = ("created", "adopted", "released", "foreign")
KINDS: dict[str, dict[str, str]] = {
    "symmetric": {},
    "hmac": {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
    "rsa-sign": {"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"},
}
MANIFEST_FIELDS = {"KeySpec": "spec", "KeyUsage": "usage"}


def reset(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def key_state(endpoint: str, key_id: str) -> dict[str, Any]:
    kms = client(endpoint)
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    return {
        "state": metadata["KeyState"],
        "description": metadata.get("Description"),
        "policy": kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"],
        "grants": sorted(g["GrantId"] for g in kms.list_grants(KeyId=key_id)["Grants"]),
        "aliases": sorted(a["AliasName"] for a in kms.list_aliases(KeyId=key_id)["Aliases"]),
        "tags": tags_of(kms, key_id),
    }


def block(name: str, kind: str, enabled: bool) -> dict[str, Any]:
    spec = {MANIFEST_FIELDS[k]: v for k, v in KINDS[kind].items()}
    return {
        **spec,
        "enabled": enabled,
        "aliases": [f"alias/mix/{name}"],
        "policy": admin_policy(),
    }


keys_strategy = st.dictionaries(
    st.sampled_from(["k1", "k2", "k3", "k4"]),
    st.tuples(st.sampled_from(ROLES), st.sampled_from(sorted(KINDS)), st.booleans()),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    phases=[p for p in Phase if p is not Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(keys=keys_strategy)
def test_adopting_creating_and_releasing_touches_nothing_outside_the_claims(
    keys: dict[str, tuple[str, str, bool]],
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reset(endpoint)
    kms = client(endpoint)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Keys the stack made earlier, now to be released.
        released = {n: v for n, v in keys.items() if v[0] == "released"}
        if released:
            earlier = {n: block(n, kind, enabled) for n, (_, kind, enabled) in released.items()}
            path = write_manifest(folder / "earlier.yaml", STACK, earlier)
            code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
            assert code == 0, out + err
        ids: dict[str, str] = {}
        for key in kms.list_keys()["Keys"]:
            ids[tags_of(kms, key["KeyId"])["kmsplan:key"]] = key["KeyId"]
        # Keys made outside kmsplan: to adopt, or foreign (never named).
        for name, (role, kind, enabled) in keys.items():
            if role not in ("adopted", "foreign"):
                continue
            made = kms.create_key(Policy=json.dumps(admin_policy()), **KINDS[kind])
            ids[name] = made["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=f"alias/mix/{name}", TargetKeyId=ids[name])
            if not enabled:
                kms.disable_key(KeyId=ids[name])
        before = {name: key_state(endpoint, key_id) for name, key_id in ids.items()}

        declared = {}
        for name, (role, kind, enabled) in keys.items():
            if role == "created":
                declared[name] = block(name, kind, enabled)
            elif role == "adopted":
                declared[name] = {**block(name, kind, enabled), "adopt": ids[name]}
        path = write_manifest(folder / "mix.yaml", STACK, declared, released=sorted(released))
        code, out, err = kmsplan(capsys, endpoint, "apply", str(path), "--auto-approve")
        assert code == 0, out + err
        code, out, err = kmsplan(capsys, endpoint, "plan", str(path), "--detailed-exitcode")
        assert code == 0, out + err

    for name, (role, _, _) in keys.items():
        if role == "created":
            continue
        after = key_state(endpoint, ids[name])
        if role == "foreign":
            assert after == before[name], name
        elif role == "released":
            kept = {k: v for k, v in before[name]["tags"].items() if not k.startswith("kmsplan:")}
            assert after == {**before[name], "tags": kept}, name
        else:
            assert {k: v for k, v in after.items() if k != "tags"} == {
                k: v for k, v in before[name].items() if k != "tags"
            }, name
            assert after["tags"]["kmsplan:stack"] == STACK
            assert after["tags"]["kmsplan:key"] == name
    created = {n for n, v in keys.items() if v[0] == "created"}
    owned = {}
    for key in kms.list_keys()["Keys"]:
        tags = tags_of(kms, key["KeyId"])
        if tags.get("kmsplan:stack") == STACK:
            owned.setdefault(tags["kmsplan:key"], []).append(key["KeyId"])
    adopted = {n for n, v in keys.items() if v[0] == "adopted"}
    assert sorted(owned) == sorted(created | adopted)
    assert all(len(found) == 1 for found in owned.values())
