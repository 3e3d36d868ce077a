"""Property test of kmsplan's central promise, against the moto server: for any valid
manifests, apply converges — a plan right after it shows no changes — and a later, different
manifest for the same stack (keys added, changed, removed, policies rewritten in an equivalent
form) applies and converges too.

Each example starts from an empty emulator and drives the real CLI: validate, apply, plan
--detailed-exitcode; then one or two follow-up manifests, each applied and planned again.
After each step, live KMS may be changed by hand (keys disabled or scheduled for deletion,
tags, aliases, grants, policies, rotation, foreign keys and grants) and a re-apply of the
same manifests must converge again. kmsplan's KMS client answers as real KMS does where moto
is lenient (state and key-type rules, see `enforce_real_kms_rules`), so a plan that works
only on moto fails here.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from apply_support import (
    ACCOUNT,
    REGION,
    ROOT,
    aliases,
    client,
    create_role,
    hooked_clients,
    stack_keys,
    tags_of,
)
from botocore.awsrequest import AWSResponse
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from kmsplan.cli import main

pytestmark = pytest.mark.integration

STACK = "prop"
NAMES = ("alpha", "beta", "gamma", "delta")
ALIAS_POOL = tuple(f"alias/prop/{n}" for n in ("a", "b", "c", "d", "e"))
ROLES = tuple(f"arn:aws:iam::{ACCOUNT}:role/{n}" for n in ("app-reader", "app-writer"))
GRANT_NAMES = ("reader", "writer", "ops")
PROTECTION = "kmsplan:deletion-protection"
DELETE_FLAGS = ("--allow-delete", "--ignore-usage", "--allow-delete-all")

# Each logical name keeps one key type for the whole run: spec and usage cannot change in
# place (the gate blocks that), and a removed key may come back later (restore).
KINDS: dict[str, dict[str, str]] = {
    "symmetric": {},
    "hmac": {"spec": "HMAC_256"},
    "rsa-sign": {"spec": "RSA_2048", "usage": "SIGN_VERIFY"},
    "rsa-encrypt": {"spec": "RSA_2048", "usage": "ENCRYPT_DECRYPT"},
}
GRANT_OPERATIONS: dict[str, tuple[str, ...]] = {
    "symmetric": (
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "DescribeKey",
        "CreateGrant",
        "RetireGrant",
    ),
    "hmac": ("GenerateMac", "VerifyMac", "DescribeKey"),
    "rsa-sign": ("Sign", "Verify", "GetPublicKey", "DescribeKey"),
    "rsa-encrypt": ("Encrypt", "Decrypt", "GetPublicKey", "DescribeKey"),
}
POLICY_ACTIONS = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:ReEncrypt*",
    "kms:GenerateMac",
    "kms:Sign",
)
ROOT_FORMS = ({"AWS": ROOT}, {"AWS": "arn:aws:iam::${account_id}:root"}, {"AWS": ACCOUNT})
EXTRA_PRINCIPALS = (
    *({"AWS": role} for role in ROLES),
    {"AWS": list(ROLES)},
    {"AWS": ROOT},
    {"Service": "logs.amazonaws.com"},
)
CONDITIONS = (
    {"StringEquals": {"kms:CallerAccount": ACCOUNT}},
    {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}},
    {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    {
        "StringEquals": {
            "aws:ResourceTag/kmsplan:key": "${key}",
            "aws:PrincipalAccount": "${account_id}",
        }
    },
    {"StringLike": {"kms:EncryptionContext:stack": ["${stack}", "${stack}-*"]}},
)

# Letters (some beyond ASCII), digits and the punctuation KMS allows in tags.
TAG_CHARS = "abcXYZ019éß _.:/=+-@"
TEXT_CHARS = TAG_CHARS + "!,;()'\"#\t\n"


def _ordered(items: list[Any]) -> st.SearchStrategy[Any]:
    """One item as is, or a list of one or more items: IAM reads "x" and ["x"] alike."""
    if len(items) == 1:
        return st.sampled_from([items[0], items])
    return st.just(items)


# ---- manifests --------------------------------------------------------------------------


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """A key policy the lockout gate passes (the account root keeps kms:*), with up to two
    more Allow statements naming principals that exist.

    No Deny statements: moto fails DescribeKey for every caller when any statement denies a
    DescribeKey-matching action on the string Resource "*" — an emulator bug
    that real KMS does not have, and the equivalent rewrites would produce that shape.
    """
    root: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": draw(st.sampled_from(ROOT_FORMS)),
        "Action": "kms:*",
        "Resource": "*",
    }
    if draw(st.booleans()):
        root = {"Sid": "AccountRoot", **root}
    statements = [root]
    for i in range(draw(st.integers(0, 2))):
        statement: dict[str, Any] = {}
        if draw(st.booleans()):
            statement["Sid"] = f"Extra{i}"
        actions = draw(
            st.lists(st.sampled_from(POLICY_ACTIONS), min_size=1, max_size=3, unique=True)
        )
        statement.update(
            Effect="Allow",
            Principal=draw(st.sampled_from(EXTRA_PRINCIPALS)),
            Action=draw(_ordered(actions)),
            Resource="*",
        )
        if draw(st.booleans()):
            statement["Condition"] = draw(st.sampled_from(CONDITIONS))
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


@st.composite
def grants(draw: st.DrawFn, kind: str) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(GRANT_NAMES), max_size=2, unique=True))
    out = []
    for name in names:
        grant: dict[str, Any] = {
            "name": name,
            "grantee": draw(
                st.sampled_from([*ROLES, "arn:aws:iam::${account_id}:role/app-reader"])
            ),
            "operations": draw(
                st.lists(
                    st.sampled_from(GRANT_OPERATIONS[kind]), min_size=1, max_size=4, unique=True
                )
            ),
        }
        if draw(st.booleans()):
            grant["retiring_principal"] = draw(st.sampled_from([*ROLES, ROOT]))
        if kind == "symmetric" and draw(st.booleans()):
            context = draw(
                st.dictionaries(
                    st.text(TAG_CHARS, min_size=1, max_size=8),
                    st.text(TEXT_CHARS, max_size=12),
                    min_size=1,
                    max_size=2,
                )
            )
            constraint = draw(
                st.sampled_from(["encryption_context_subset", "encryption_context_equals"])
            )
            grant["constraints"] = {constraint: context}
        out.append(grant)
    return out


@st.composite
def deletions(draw: st.DrawFn) -> dict[str, Any]:
    deletion: dict[str, Any] = {}
    if draw(st.booleans()):
        deletion["protected"] = draw(st.booleans())
    if draw(st.booleans()):
        deletion["window_days"] = draw(st.integers(7, 30))
    return deletion


@st.composite
def defaults(draw: st.DrawFn) -> dict[str, Any]:
    """A `defaults` block: merged under every key; its rotation only under symmetric keys."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        rotation: dict[str, Any] = {"enabled": draw(st.booleans())}
        if rotation["enabled"] and draw(st.booleans()):
            rotation["period_days"] = draw(st.integers(90, 2560))
        out["rotation"] = rotation
    deletion = draw(deletions())
    if deletion:
        out["deletion"] = deletion
    tags = draw(st.dictionaries(tag_keys, st.text(TAG_CHARS, max_size=10), max_size=2))
    if tags:
        out["tags"] = tags
    return out


tag_keys = st.text(TAG_CHARS, min_size=1, max_size=10).filter(
    lambda k: not k.lower().startswith(("aws:", "kmsplan:"))
)


@st.composite
def keys(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """One key of `kind`, without aliases (they are drawn for the whole stack)."""
    key: dict[str, Any] = {**KINDS[kind]}
    if draw(st.booleans()):
        key["description"] = draw(st.text(TEXT_CHARS, max_size=30))
    if draw(st.booleans()):
        key["enabled"] = draw(st.booleans())
    if kind == "symmetric" and draw(st.booleans()):
        rotation: dict[str, Any] = {"enabled": draw(st.booleans())}
        if rotation["enabled"] and draw(st.booleans()):
            rotation["period_days"] = draw(st.integers(90, 2560))
        key["rotation"] = rotation
    deletion = draw(deletions())
    if deletion or draw(st.booleans()):
        key["deletion"] = deletion
    tags = draw(st.dictionaries(tag_keys, st.text(TAG_CHARS, max_size=10), max_size=3))
    if tags:
        key["tags"] = tags
    if draw(st.booleans()):
        key["policy"] = draw(policies())
    key_grants = draw(grants(kind))
    if key_grants:
        key["grants"] = key_grants
    return key


@st.composite
def equivalent_policy(draw: st.DrawFn, policy: dict[str, Any]) -> dict[str, Any]:
    """`policy` written another way IAM reads the same: statement order, "x" vs ["x"], action
    case, the account root as an id, an ARN or through ${account_id}. Sids are kept: a Sid
    change is a (label-only) policy change by design."""
    statements = []
    for original in draw(st.permutations(policy["Statement"])):
        statement = dict(original)
        actions = original["Action"]
        actions = list(actions) if isinstance(actions, list) else [actions]
        actions = [a.upper() if draw(st.booleans()) else a.lower() for a in actions]
        statement["Action"] = draw(_ordered(draw(st.permutations(actions))))
        statement["Resource"] = draw(_ordered(["*"]))
        principal = original["Principal"]
        if principal in ROOT_FORMS:
            principal = draw(st.sampled_from(ROOT_FORMS))
        if "AWS" in principal:
            principal = {"AWS": draw(_ordered(_as_list(principal["AWS"])))}
        statement["Principal"] = principal
        statements.append(statement)
    return {"Version": policy["Version"], "Statement": statements}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One manifest of the sequence, and the keys it restates in an equivalent form: the plan
    for them must show no key or grant change."""

    keys: dict[str, dict[str, Any]]
    kinds: dict[str, str]
    defaults: dict[str, Any] = field(default_factory=dict)
    restated: frozenset[str] = frozenset()

    def protected(self, name: str) -> bool:
        """The protection this manifest gives key `name` (the live tag once it is applied)."""
        for block in (self.keys[name].get("deletion", {}), self.defaults.get("deletion", {})):
            if "protected" in block:
                return bool(block["protected"])
        return True


def with_aliases(
    draw: st.DrawFn, stack: dict[str, dict[str, Any]], keep: dict[str, list[str]]
) -> None:
    """Give the keys of `stack` 0-2 aliases each, unique in the stack; a key keeps its
    aliases from `keep` where hypothesis says so and they are still free."""
    free = list(ALIAS_POOL)
    for name in draw(st.permutations(sorted(stack))):
        chosen = [a for a in keep.get(name, []) if a in free] if draw(st.booleans()) else []
        if not chosen:
            chosen = draw(st.lists(st.sampled_from(free), max_size=2, unique=True)) if free else []
        for alias in chosen:
            free.remove(alias)
        if chosen:
            stack[name]["aliases"] = chosen
        else:
            stack[name].pop("aliases", None)


@st.composite
def first_step(draw: st.DrawFn, kinds: dict[str, str]) -> Step:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    stack = {name: draw(keys(kinds[name])) for name in names}
    with_aliases(draw, stack, {})
    return Step(keys=stack, kinds=kinds, defaults=draw(defaults()))


@st.composite
def next_step(draw: st.DrawFn, kinds: dict[str, str], previous: Step) -> Step:
    """The next manifest: each key kept (maybe restated), changed or — if its live protection
    is off — removed; new keys may appear, including ones removed earlier (a restore)."""
    stack: dict[str, dict[str, Any]] = {}
    restated: set[str] = set()
    for name, old in previous.keys.items():
        removable = not previous.protected(name)
        fate = draw(
            st.sampled_from(["keep", "change", "remove"] if removable else ["keep", "change"])
        )
        if fate == "remove":
            continue
        if fate == "keep":
            stack[name] = restate(draw, old)
            restated.add(name)
        else:
            fresh = draw(keys(kinds[name]))
            mixed = {
                f: (old if f in old and draw(st.booleans()) else fresh).get(f)
                for f in {*old, *fresh}
            }
            stack[name] = {f: v for f, v in mixed.items() if v is not None}
    for name in NAMES:
        if name not in stack and name not in previous.keys and draw(st.booleans()):
            stack[name] = draw(keys(kinds[name]))
    if not stack:
        name = draw(st.sampled_from(NAMES))
        stack[name] = draw(keys(kinds[name]))
    with_aliases(draw, stack, {n: k.get("aliases", []) for n, k in previous.keys.items()})
    new_defaults = previous.defaults if draw(st.booleans()) else draw(defaults())
    if new_defaults != previous.defaults:
        restated.clear()  # new defaults may change every key
    return Step(keys=stack, kinds=kinds, defaults=new_defaults, restated=frozenset(restated))


def restate(draw: st.DrawFn, key: dict[str, Any]) -> dict[str, Any]:
    """`key` as it is, written differently: field and tag order, grant and operation order,
    an equivalent policy."""
    out = dict(key)
    if "policy" in key:
        out["policy"] = draw(equivalent_policy(key["policy"]))
    if "tags" in key:
        out["tags"] = dict(draw(st.permutations(list(key["tags"].items()))))
    if "grants" in key:
        out["grants"] = [
            {**g, "operations": draw(st.permutations(g["operations"]))}
            for g in draw(st.permutations(key["grants"]))
        ]
    return dict(draw(st.permutations(list(out.items()))))


@st.composite
def scenarios(draw: st.DrawFn) -> list[Step]:
    kinds = {
        name: draw(st.sampled_from(["symmetric", "symmetric", "hmac", "rsa-sign", "rsa-encrypt"]))
        for name in NAMES
    }
    steps = [draw(first_step(kinds))]
    for _ in range(draw(st.integers(1, 2))):
        steps.append(draw(next_step(kinds, steps[-1])))
    return steps


# ---- running kmsplan -------------------------------------------------------------------


def reset(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


class Session:
    """Runs kmsplan against the emulator and keeps a transcript for the failure message."""

    def __init__(self, capsys: pytest.CaptureFixture[str], endpoint: str, folder: Path) -> None:
        self.capsys = capsys
        self.endpoint = endpoint
        # tmp_path is shared by every example of the test.
        self.folder = Path(tempfile.mkdtemp(dir=folder))
        self.transcript: list[str] = []

    def write(self, index: int, step: Step, *, split: bool, policy_files: bool) -> Path:
        """Write `step` as one manifest file, or (`split`) as a folder of two files; with
        `policy_files`, each policy in its own JSON file named by `{file: ...}`."""
        folder = self.folder / f"step{index}"
        folder.mkdir()
        stack: dict[str, dict[str, Any]] = {}
        for name, key in step.keys.items():
            if policy_files and "policy" in key:
                (folder / "policies").mkdir(exist_ok=True)
                text = json.dumps(key["policy"], indent=2, ensure_ascii=False)
                (folder / "policies" / f"{name}.json").write_text(text, encoding="utf-8")
                self.transcript.append(f"==== {folder.name}/policies/{name}.json ====\n{text}")
                key = {**key, "policy": {"file": f"policies/{name}.json"}}
            stack[name] = key
        names = list(stack)
        half = len(names) // 2
        parts = [names[:half], names[half:]] if split else [names]
        for number, part in enumerate(parts):
            document: dict[str, Any] = {"version": 1, "stack": STACK}
            if step.defaults and number == 0:
                document["defaults"] = step.defaults
            if part:
                document["keys"] = {name: stack[name] for name in part}
            text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
            path = folder / f"part{number}.yaml"
            path.write_text(text, encoding="utf-8")
            self.transcript.append(f"==== {folder.name}/{path.name} ====\n{text}")
        return folder if split else folder / "part0.yaml"

    def run(self, *args: str, aws: bool = True) -> tuple[int, str]:
        argv = [*args, "--endpoint-url", self.endpoint, "--region", REGION] if aws else list(args)
        self.capsys.readouterr()
        code = main(argv)
        out, err = self.capsys.readouterr()
        self.transcript.append(f"==== kmsplan {' '.join(args)} -> {code} ====\n{out}{err}")
        return code, out

    def converge(self, manifest: str, flags: tuple[str, ...], what: str) -> None:
        """Apply, then check that a plan shows no changes."""
        code, _ = self.run("apply", manifest, "--auto-approve", *flags)
        assert code == 0, self.fail(f"apply of {what} failed")
        for sign in ("scheduled for deletion", ": restored", ".disable: disabled", "grant."):
            if sign in self.transcript[-1]:
                event(f"apply: {sign.strip(':. ')}")
        code, out = self.run("plan", manifest, "--detailed-exitcode")
        assert code == 0, self.fail(f"the plan after applying {what} is not clean")
        last = out.splitlines()[-1]
        assert last == "No changes. KMS matches the manifests.", self.fail(f"plan said {last!r}")

    def fail(self, what: str) -> str:
        return f"{what}\n" + "\n".join(self.transcript)


# ---- the KMS rules moto does not enforce ----------------------------------------------

# Operations real KMS refuses on a key pending deletion (KMSInvalidStateException) and on a
# disabled key (DisabledException); moto accepts them all.
_REFUSED_WHEN_PENDING = frozenset(
    {
        "CreateAlias",
        "UpdateAlias",
        "TagResource",
        "UntagResource",
        "UpdateKeyDescription",
        "EnableKeyRotation",
        "DisableKeyRotation",
        "CreateGrant",
        "ScheduleKeyDeletion",
        "EnableKey",
    }
)
_REFUSED_WHEN_DISABLED = frozenset({"CreateGrant", "EnableKeyRotation", "DisableKeyRotation"})


def key_type(metadata: dict[str, Any]) -> tuple[str, str]:
    """What UpdateAlias compares: symmetric, HMAC or asymmetric, and the key usage."""
    spec = metadata.get("KeySpec", "SYMMETRIC_DEFAULT")
    kind = "symmetric" if spec == "SYMMETRIC_DEFAULT" else spec.split("_")[0]
    return kind if kind in ("symmetric", "HMAC") else "asymmetric", metadata.get("KeyUsage", "")


def real_kms_refusal(reader: Any, operation: str, params: dict[str, Any]) -> tuple[str, str] | None:
    """The error real KMS answers to this write, for the rules moto does not enforce."""
    key = params.get("TargetKeyId", params.get("KeyId"))
    if key is None:
        return None
    state = reader.describe_key(KeyId=key)["KeyMetadata"]
    if operation in _REFUSED_WHEN_PENDING and state["KeyState"] == "PendingDeletion":
        return "KMSInvalidStateException", f"{key} is pending deletion (emulated)"
    if operation == "CancelKeyDeletion" and state["KeyState"] != "PendingDeletion":
        return "KMSInvalidStateException", f"{key} is not pending deletion (emulated)"
    if operation in _REFUSED_WHEN_DISABLED and state["KeyState"] == "Disabled":
        return "DisabledException", f"{key} is disabled (emulated)"
    if operation == "UpdateAlias":
        current = reader.describe_key(KeyId=params["AliasName"])["KeyMetadata"]
        if key_type(current) != key_type(state):
            # API_UpdateAlias: "The current and new KMS key must be the same type (both
            # symmetric or both asymmetric or both HMAC), and they must have the same key usage."
            return "ValidationException", "alias target of another key type or usage (emulated)"
    return None


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def enforce_real_kms_rules(endpoint: str) -> Any:
    """An installer for `hooked_clients`: kmsplan's KMS client gets the answers real KMS gives
    where moto is lenient, so the property cannot pass on moto and fail on AWS there."""
    reader = client(endpoint)

    def install(kms: Any) -> None:
        def before_send(event_name: str, request: Any, **_: Any) -> AWSResponse | None:
            operation = event_name.rsplit(".", 1)[-1]
            if operation not in (*_REFUSED_WHEN_PENDING, "CancelKeyDeletion"):
                return None
            refusal = real_kms_refusal(reader, operation, json.loads(request.body or b"{}"))
            if refusal is None:
                return None
            body = json.dumps({"__type": refusal[0], "message": refusal[1]}).encode()
            return AWSResponse(request.url, 400, {}, _Body(body))

        kms.meta.events.register_first("before-send.kms", before_send)

    return install


# ---- drift: live KMS changed by hand -----------------------------------------------------

DRIFTS = (
    "disable",
    "enable",
    "describe",
    "tag",
    "untag",
    "protection",
    "schedule_deletion",
    "alias_delete",
    "alias_add",
    "alias_retarget",
    "grant_revoke",
    "grant_variant",
    "foreign_grant",
    "policy",
    "rotation",
    "foreign_keys",
)
BY_HAND_ALIAS = "alias/prop/by-hand"
BY_HAND_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
        {
            "Sid": "ByHand",
            "Effect": "Allow",
            "Principal": {"AWS": ROLES[1]},
            "Action": "kms:Decrypt",
            "Resource": "*",
        },
    ],
}


def drift(kms: Any, endpoint: str, step: Step, changes: list[tuple[str, int]]) -> list[str]:
    """Change the stack's live keys by hand, as people do between applies; return what was
    done. A change real KMS would refuse in the key's state (a grant or rotation change on a
    disabled key, anything on a key pending deletion, an alias moved to a key of another
    type) is skipped: moto accepts them all."""
    kinds, declared = step.kinds, sorted(step.keys)
    live = {n: m[-1]["KeyId"] for n, m in stack_keys(endpoint, STACK).items()}
    done: list[str] = []
    for what, which in changes:
        name = declared[which % len(declared)]
        key = live.get(name)
        if key is None:
            continue
        state = kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"]
        if state == "PendingDeletion":
            continue
        enabled = state == "Enabled"
        names = {g.get("Name", ""): g for g in kms.list_grants(KeyId=key)["Grants"]}
        managed_grants = sorted(n for n in names if n.startswith("kmsplan/"))
        key_aliases = sorted(a for a, target in aliases(endpoint).items() if target == key)
        if what == "disable" and enabled:
            kms.disable_key(KeyId=key)
        elif what == "enable" and state == "Disabled":
            kms.enable_key(KeyId=key)
        elif what == "describe":
            kms.update_key_description(KeyId=key, Description="changed by hand")
        elif what == "tag":
            kms.tag_resource(KeyId=key, Tags=[{"TagKey": "by-hand", "TagValue": "yes"}])
        elif what == "untag":
            user = sorted(t for t in tags_of(kms, key) if not t.startswith("kmsplan:"))
            if not user:
                continue
            kms.untag_resource(KeyId=key, TagKeys=user[:1])
        elif what == "protection":
            flipped = {"true": "false"}.get(tags_of(kms, key).get(PROTECTION, ""), "true")
            kms.tag_resource(KeyId=key, Tags=[{"TagKey": PROTECTION, "TagValue": flipped}])
        elif what == "schedule_deletion":
            kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
        elif what == "alias_delete" and key_aliases:
            kms.delete_alias(AliasName=key_aliases[0])
        elif what == "alias_add" and BY_HAND_ALIAS not in aliases(endpoint):
            kms.create_alias(AliasName=BY_HAND_ALIAS, TargetKeyId=key)
        elif what == "alias_retarget" and key_aliases:
            others = [
                k
                for n, k in live.items()
                if n != name
                and kinds[n] == kinds[name]
                and kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] != "PendingDeletion"
            ]
            if not others:
                continue
            kms.update_alias(AliasName=key_aliases[0], TargetKeyId=others[0])
        elif what == "grant_revoke" and managed_grants:
            kms.revoke_grant(KeyId=key, GrantId=names[managed_grants[0]]["GrantId"])
        elif what == "grant_variant" and managed_grants and enabled:
            # A grant of the managed name with other operations: KMS keeps both.
            kms.create_grant(
                KeyId=key,
                Name=managed_grants[0],
                GranteePrincipal=names[managed_grants[0]]["GranteePrincipal"],
                Operations=["DescribeKey"],
            )
        elif what == "foreign_grant" and enabled:
            kms.create_grant(
                KeyId=key, Name="by-hand", GranteePrincipal=ROLES[0], Operations=["DescribeKey"]
            )
        elif what == "policy":
            kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(BY_HAND_POLICY))
        elif what == "rotation" and kinds[name] == "symmetric" and enabled:
            if kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]:
                kms.disable_key_rotation(KeyId=key)
            else:
                kms.enable_key_rotation(KeyId=key)
        elif what == "foreign_keys":
            # Keys kmsplan does not own: another stack's, and an untagged one.
            other_stack = [{"TagKey": "kmsplan:stack", "TagValue": "other"}]
            kms.create_key(Tags=[*other_stack, {"TagKey": "kmsplan:key", "TagValue": name}])
            kms.create_key(Description=f"{STACK} {name}, not managed")
        else:
            continue
        done.append(f"{what} {name} ({key})")
    return done


# (what, which declared key: an index into them, wrapped around)
drifts = st.lists(st.tuples(st.sampled_from(DRIFTS), st.integers(0, 2)), max_size=3)


# CI runs a fixed, small set of examples (≈80 ms per CreateKey on the emulator); set
# KMSPLAN_PROPERTY_EXAMPLES=N for a longer, randomized local search.
ALL_PHASES = tuple(Phase)
DEEP_EXAMPLES = int(os.environ.get("KMSPLAN_PROPERTY_EXAMPLES", "0"))


@settings(
    max_examples=DEEP_EXAMPLES or 12,
    deadline=None,
    derandomize=not DEEP_EXAMPLES,
    # A failure prints its whole transcript; shrinking it (minutes here) is for deep runs.
    phases=ALL_PHASES if DEEP_EXAMPLES else [p for p in ALL_PHASES if p is not Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=scenarios(), data=st.data())
def test_apply_converges_and_later_manifests_converge_too(
    steps: list[Step],
    data: st.DataObject,
    endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with hooked_clients(monkeypatch, enforce_real_kms_rules(endpoint)):
        run_scenario(steps, data, endpoint, tmp_path, capsys)


def run_scenario(
    steps: list[Step],
    data: st.DataObject,
    endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The `endpoint` fixture resets the emulator once per test function, not per example.
    reset(endpoint)
    for role in ROLES:
        create_role(endpoint, role.rsplit("/", 1)[1])
    session = Session(capsys, endpoint, tmp_path)
    kms = client(endpoint)

    for index, step in enumerate(steps):
        layout = data.draw(st.tuples(st.booleans(), st.booleans()), label="split, policy files")
        manifest = str(session.write(index, step, split=layout[0], policy_files=layout[1]))
        code, _ = session.run("validate", manifest, aws=False)
        assert code == 0, session.fail("the generator made an invalid manifest")

        if step.restated:
            code, out = session.run("plan", manifest, "--format", "json", *DELETE_FLAGS)
            assert code == 0, session.fail("plan failed")
            touched = restated_changes(json.loads(out), step.restated)
            assert not touched, session.fail(f"a restated key is planned to change: {touched}")

        flags = DELETE_FLAGS if index else ()
        session.converge(manifest, flags, f"step {index}")

        done = drift(kms, endpoint, step, data.draw(drifts, label=f"drift after step {index}"))
        for line in done:
            event(f"changed by hand: {line.split()[0]}")
        if done:
            session.transcript.append("==== changed by hand ====\n" + "\n".join(done))
            session.converge(manifest, (), f"step {index} after changes by hand")


def restated_changes(plan: dict[str, Any], restated: frozenset[str]) -> list[str]:
    """Addresses of planned changes to the keys (and their grants) that were only restated."""
    return [
        c["address"]
        for c in plan["changes"]
        if c["key"] in restated and not c["address"].startswith("alias.")
    ]
