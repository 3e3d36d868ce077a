"""Loading manifests: defaults merge, variables, source locations, multi-file sets, KMS facts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kmsplan import kmsspec
from kmsplan.errors import ValidationFailed
from kmsplan.lint.rule import locate
from kmsplan.manifest import load, resolve_variables
from kmsplan.manifest.schema import manifest_schema
from kmsplan.model import GRANT_PREFIX, Deletion, Grant, GrantConstraints, Location, Rotation


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return str(path)


def errors(paths: list[str]) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        load(paths)
    return [d.render() for d in info.value.diagnostics]


# ---- defaults --------------------------------------------------------------------------------


def test_defaults_merge_field_by_field_and_the_key_wins(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        defaults:
          rotation: {enabled: true, period_days: 365}
          deletion: {protected: false, window_days: 10}
          tags: {team: payments, env: prod}
        keys:
          a:
            rotation: {period_days: 180}
            deletion: {window_days: 20}
            tags: {env: dev, data: pii}
          b: {}
    """,
    )
    stack = load([manifest])
    a, b = stack.keys
    assert a.rotation == Rotation(enabled=True, period_days=180)
    assert a.deletion == Deletion(protected=False, window_days=20)
    assert a.tags == (("data", "pii"), ("env", "dev"), ("team", "payments"))
    assert b.rotation == Rotation(enabled=True, period_days=365)
    assert b.deletion == Deletion(protected=False, window_days=10)
    assert b.tags == (("env", "prod"), ("team", "payments"))
    assert stack.default_window_days == 10


def test_default_rotation_skips_keys_that_kms_cannot_rotate(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        defaults:
          rotation: {enabled: true}
        keys:
          sym: {}
          mac: {spec: HMAC_256}
          rsa: {spec: RSA_2048, usage: SIGN_VERIFY}
    """,
    )
    keys = {k.name: k for k in load([manifest]).keys}
    assert keys["sym"].rotation.enabled is True
    assert keys["mac"].rotation.enabled is False
    assert keys["rsa"].rotation.enabled is False


def test_keys_without_settings_get_the_model_defaults(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.yaml", "version: 1\nstack: s\nkeys:\n  a: {}\n")
    stack = load([manifest])
    (key,) = stack.keys
    assert (key.spec, key.usage, key.enabled, key.multi_region) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        True,
        False,
    )
    assert key.rotation == Rotation() and key.deletion == Deletion()
    assert key.policy is None and key.grants == () and key.aliases == ()
    assert stack.default_window_days == 30


def test_a_single_usage_spec_implies_its_usage(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        keys:
          mac: {spec: HMAC_384}
          ed: {spec: ECC_NIST_EDWARDS25519}
          dsa: {spec: ML_DSA_65}
    """,
    )
    usages = {k.name: k.usage for k in load([manifest]).keys}
    assert usages == {"mac": "GENERATE_VERIFY_MAC", "ed": "SIGN_VERIFY", "dsa": "SIGN_VERIFY"}


# ---- variables -------------------------------------------------------------------------------

VARIABLES = """
    version: 1
    stack: shop
    keys:
      orders:
        policy:
          Version: "2012-10-17"
          Statement:
            - Sid: "${stack}-${key}"
              Effect: Allow
              Principal: {AWS: "arn:aws:iam::${account_id}:role/${stack}-app"}
              Action: kms:Decrypt
              Resource: "*"
              Condition:
                StringEquals: {"kms:ViaService": "s3.${region}.amazonaws.com"}
                StringLike: {"aws:PrincipalTag/team": "${aws:PrincipalTag/team}"}
        grants:
          - name: worker
            grantee: "arn:aws:iam::${account_id}:role/${key}-worker"
            retiring_principal: "arn:aws:iam::${account_id}:role/admin"
            operations: [Encrypt, Decrypt]
            constraints: {encryption_context_subset: {"app": "${stack}", "r": "${region}"}}
"""


def test_stack_and_key_are_substituted_at_load_time_the_rest_later(tmp_path: Path) -> None:
    (key,) = load([write(tmp_path / "m.yaml", VARIABLES)]).keys
    assert key.policy is not None
    statement = key.policy["Statement"][0]
    assert statement["Sid"] == "shop-orders"
    assert statement["Principal"] == {"AWS": "arn:aws:iam::${account_id}:role/shop-app"}
    # IAM policy variables belong to IAM and stay as written.
    assert statement["Condition"]["StringLike"] == {
        "aws:PrincipalTag/team": "${aws:PrincipalTag/team}"
    }
    assert key.grants[0].grantee == "arn:aws:iam::${account_id}:role/orders-worker"
    assert key.grants[0].constraints == GrantConstraints(
        encryption_context_subset=(("app", "shop"), ("r", "${region}"))
    )


def test_resolve_variables_fills_account_and_region_and_leaves_the_input_alone(
    tmp_path: Path,
) -> None:
    stack = load([write(tmp_path / "m.yaml", VARIABLES)])
    resolved = resolve_variables(stack, account_id="123456789012", region="eu-west-1")
    (key,) = resolved.keys
    assert key.policy is not None
    statement = key.policy["Statement"][0]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/shop-app"}
    assert statement["Condition"]["StringEquals"] == {
        "kms:ViaService": "s3.eu-west-1.amazonaws.com"
    }
    assert statement["Condition"]["StringLike"] == {
        "aws:PrincipalTag/team": "${aws:PrincipalTag/team}"
    }
    assert key.grants[0] == Grant(
        name="worker",
        grantee="arn:aws:iam::123456789012:role/orders-worker",
        retiring_principal="arn:aws:iam::123456789012:role/admin",
        operations=("Decrypt", "Encrypt"),
        constraints=GrantConstraints(
            encryption_context_subset=(("app", "shop"), ("r", "eu-west-1"))
        ),
    )
    assert key.source_map == stack.keys[0].source_map
    # Pure: the loaded stack still holds the variables.
    assert stack.keys[0].policy is not None
    assert "${account_id}" in stack.keys[0].policy["Statement"][0]["Principal"]["AWS"]


def test_resolve_variables_refuses_a_malformed_account_id(tmp_path: Path) -> None:
    stack = load([write(tmp_path / "m.yaml", VARIABLES)])
    with pytest.raises(ValueError, match="12 digits"):
        resolve_variables(stack, account_id="1234", region="eu-west-1")


def test_resolve_variables_returns_keys_without_plan_time_variables_as_they_are(
    tmp_path: Path,
) -> None:
    stack = load(
        [
            write(
                tmp_path / "m.yaml",
                VARIABLES
                + """
      plain:
        policy:
          Version: "2012-10-17"
          Statement:
            - Sid: "${stack}"
              Effect: Allow
              Principal: {AWS: "arn:aws:iam::111122223333:root"}
              Action: kms:*
              Resource: "*"
              Condition: {StringLike: {"aws:PrincipalTag/team": "${aws:PrincipalTag/team}"}}
        grants:
          - {name: reader, grantee: "arn:aws:iam::111122223333:role/r", operations: [Decrypt]}
      bare: {}
""",
            )
        ]
    )
    resolved = resolve_variables(stack, account_id="123456789012", region="eu-west-1")
    by_name = {key.name: key for key in resolved.keys}
    loaded = {key.name: key for key in stack.keys}
    # Nothing to fill: the very same objects, not copies.
    assert by_name["plain"] is loaded["plain"]
    assert by_name["bare"] is loaded["bare"]
    # The key with variables in the same stack is filled.
    orders = by_name["orders"]
    assert orders is not loaded["orders"]
    assert orders.policy is not None
    assert orders.policy["Statement"][0]["Principal"] == {
        "AWS": "arn:aws:iam::123456789012:role/shop-app"
    }
    assert orders.grants[0].grantee == "arn:aws:iam::123456789012:role/orders-worker"


def test_resolve_variables_returns_a_stack_without_plan_time_variables_as_it_is(
    tmp_path: Path,
) -> None:
    stack = load(
        [
            write(
                tmp_path / "m.yaml",
                """
        version: 1
        stack: s
        keys:
          a:
            policy:
              Version: "2012-10-17"
              Statement:
                - {Sid: "${key}", Effect: Allow, Principal: {AWS: "arn:aws:iam::111122223333:root"},
                   Action: "kms:*", Resource: "*"}
          b: {}
    """,
            )
        ]
    )
    assert resolve_variables(stack, account_id="123456789012", region="eu-west-1") is stack


def test_resolve_variables_fills_field_names_and_keeps_their_order(tmp_path: Path) -> None:
    stack = load(
        [
            write(
                tmp_path / "m.yaml",
                """
        version: 1
        stack: s
        keys:
          a:
            policy:
              Version: "2012-10-17"
              Statement:
                - Effect: Allow
                  Principal: {AWS: "arn:aws:iam::111122223333:root"}
                  Action: kms:Decrypt
                  Resource: "*"
                  Condition:
                    StringEquals:
                      "kms:EncryptionContext:first": "x"
                      "kms:EncryptionContext:${region}": "${account_id}"
                      "kms:EncryptionContext:last": "y"
    """,
            )
        ]
    )
    (key,) = resolve_variables(stack, account_id="123456789012", region="eu-west-1").keys
    assert key.policy is not None
    condition = key.policy["Statement"][0]["Condition"]["StringEquals"]
    assert list(condition.items()) == [
        ("kms:EncryptionContext:first", "x"),
        ("kms:EncryptionContext:eu-west-1", "123456789012"),
        ("kms:EncryptionContext:last", "y"),
    ]


def test_unknown_variables_are_errors_in_policies_and_grants(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        VARIABLES.replace("${key}-worker", "${app}-worker").replace("${stack}-app", "${stak}-app"),
    )
    assert errors([manifest]) == [
        f"{manifest}:10:28: error: keys.orders.policy.Statement[0].Principal.AWS: unknown "
        "variable ${stak} (${account_id}, ${region}, ${stack} or ${key})",
        f"{manifest}:18:18: error: keys.orders.grants[0].grantee: unknown variable ${{app}} "
        "(${account_id}, ${region}, ${stack} or ${key})",
    ]


# ---- locations -------------------------------------------------------------------------------


def test_source_map_locates_every_node_of_the_key(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.yaml", VARIABLES)
    (key,) = load([manifest]).keys
    assert key.location == Location(file=manifest, line=4, column=3)
    assert key.source_map["keys.orders.policy.Statement[0]"] == Location(
        file=manifest, line=8, column=11
    )
    assert key.source_map["keys.orders.policy.Statement[0].Action"] == Location(
        file=manifest, line=11, column=19
    )
    assert key.grants[0].location == Location(file=manifest, line=17, column=9)
    # A path that was not written is located at its nearest written ancestor.
    assert locate(key, "keys.orders.policy.Statement[0].Action[3]") == Location(
        file=manifest, line=11, column=19
    )
    assert locate(key, "keys.orders.rotation.enabled") == key.source_map["keys.orders"]
    assert locate(key, "elsewhere") == key.location


def test_policy_files_are_read_relative_to_their_manifest_and_located_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "set" / "keys.yaml",
        """
        version: 1
        stack: s
        defaults:
          tags: {team: a}
        keys:
          a:
            policy: {file: policies/a.json}
    """,
    )
    write(
        tmp_path / "set" / "policies" / "a.json",
        """
        {
          "Version": "2012-10-17",
          "Statement": [
            {"Sid": "Admin", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::${account_id}:root"},
             "Action": "kms:*", "Resource": "*"}
          ]
        }
    """,
    )
    stack = load(["set"])
    (key,) = stack.keys
    assert stack.files == ("set/keys.yaml",)
    assert key.policy is not None and key.policy["Statement"][0]["Sid"] == "Admin"
    assert key.source_map["keys.a.policy.Statement[0]"] == Location(
        file="set/policies/a.json", line=4, column=5
    )
    # Inherited defaults are located where the defaults declare them.
    assert key.source_map["keys.a.tags.team"] == Location(file="set/keys.yaml", line=4, column=16)


# ---- sets of files ---------------------------------------------------------------------------


def test_a_folder_merges_yaml_and_yml_files_in_name_order_and_ignores_the_rest(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "set"
    write(folder / "b.yml", "version: 1\nstack: s\nkeys:\n  b: {}\n")
    write(folder / "a.yaml", "version: 1\nstack: s\nregion: eu-west-1\nkeys:\n  a: {}\n")
    write(folder / "notes.txt", "not a manifest")
    write(folder / "sub" / "c.yaml", "version: 1\nstack: other\n")
    stack = load([folder])
    assert [k.name for k in stack.keys] == ["a", "b"]
    assert stack.files == (str(folder / "a.yaml"), str(folder / "b.yml"))
    assert (stack.name, stack.region, stack.account) == ("s", "eu-west-1", None)


def test_an_empty_keys_block_is_a_valid_stack_of_no_keys(tmp_path: Path) -> None:
    stack = load([write(tmp_path / "m.yaml", "version: 1\nstack: s\nkeys: {}\n")])
    assert stack.keys == ()


def test_yaml_anchors_are_expanded(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        keys:
          a:
            tags: &common {team: x}
          b:
            tags: *common
    """,
    )
    assert [k.tags for k in load([manifest]).keys] == [(("team", "x"),), (("team", "x"),)]


def test_dates_and_yaml_11_booleans_do_not_sneak_in_as_other_types(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        keys:
          a:
            tags: {since: 2024-01-01, enabled: yes}
    """,
    )
    assert errors([manifest]) == [
        f"{manifest}:5:40: error: keys.a.tags.enabled: expected a string, got a boolean "
        "(write it in quotes)",
    ]


# ---- KMS facts -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", kmsspec.KEY_SPECS)
def test_every_spec_has_usages_and_grant_operations(spec: str) -> None:
    usages = kmsspec.valid_usages(spec)
    assert usages and set(usages) <= set(kmsspec.KEY_USAGES)
    for usage in usages:
        ops = kmsspec.grant_operations(spec, usage)
        assert kmsspec.GRANT_OPERATIONS_ANY_KEY <= ops <= set(kmsspec.GRANT_OPERATIONS)
        assert kmsspec.can_rotate(spec, usage) == (spec == "SYMMETRIC_DEFAULT")
        assert kmsspec.grant_constraints_allowed(spec, usage) == (spec == "SYMMETRIC_DEFAULT")


@pytest.mark.parametrize(
    ("spec", "usage", "allowed", "refused"),
    [
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", {"GenerateDataKey", "ReEncryptFrom"}, {"Sign"}),
        (
            "RSA_3072",
            "ENCRYPT_DECRYPT",
            {"Encrypt", "Decrypt", "ReEncryptTo", "GetPublicKey"},
            {"GenerateDataKey", "GenerateDataKeyPair", "Sign"},
        ),
        ("RSA_2048", "SIGN_VERIFY", {"Sign", "Verify", "GetPublicKey"}, {"Decrypt"}),
        ("HMAC_224", "GENERATE_VERIFY_MAC", {"GenerateMac", "VerifyMac"}, {"Sign", "Encrypt"}),
        ("ECC_NIST_P521", "KEY_AGREEMENT", {"DeriveSharedSecret"}, {"Sign", "Decrypt"}),
        ("SM2", "ENCRYPT_DECRYPT", {"Encrypt"}, {"GenerateDataKey"}),
    ],
)
def test_grant_operations_follow_the_key_usage(
    spec: str, usage: str, allowed: set[str], refused: set[str]
) -> None:
    ops = kmsspec.grant_operations(spec, usage)
    assert allowed <= ops
    assert not refused & ops


def test_spec_usage_matrix_matches_the_kms_api_reference() -> None:
    assert kmsspec.valid_usages("ECC_NIST_P256") == ("SIGN_VERIFY", "KEY_AGREEMENT")
    assert kmsspec.valid_usages("ECC_SECG_P256K1") == ("SIGN_VERIFY",)
    assert kmsspec.valid_usages("SM2") == ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT")
    assert kmsspec.valid_usages("AES_256") == ()
    assert kmsspec.implied_usage("RSA_4096") is None


def test_schema_limits_are_the_kms_limits() -> None:
    """The JSON schema restates kmsspec's limits for editors; the two must not drift apart."""
    defs = manifest_schema()["$defs"]
    key = defs["key"]["properties"]
    assert key["description"]["maxLength"] == kmsspec.DESCRIPTION_MAX_CHARS
    assert key["aliases"]["maxItems"] == kmsspec.ALIASES_PER_KEY
    assert key["aliases"]["items"]["maxLength"] == kmsspec.ALIAS_MAX_CHARS
    assert key["aliases"]["items"]["pattern"] == kmsspec.ALIAS_PATTERN
    period = defs["rotation"]["properties"]["period_days"]
    assert (period["minimum"], period["maximum"]) == (
        kmsspec.ROTATION_PERIOD_MIN_DAYS,
        kmsspec.ROTATION_PERIOD_MAX_DAYS,
    )
    window = defs["deletion"]["properties"]["window_days"]
    assert (window["minimum"], window["maximum"]) == (
        kmsspec.DELETION_WINDOW_MIN_DAYS,
        kmsspec.DELETION_WINDOW_MAX_DAYS,
    )
    assert defs["tags"]["maxProperties"] == kmsspec.TAGS_PER_KEY
    assert defs["tags"]["propertyNames"]["maxLength"] == kmsspec.TAG_KEY_MAX_CHARS
    assert defs["tags"]["additionalProperties"]["maxLength"] == kmsspec.TAG_VALUE_MAX_CHARS
    # The schema's grant name is the logical name; KMS's limit includes the "kmsplan/" prefix.
    logical_max = kmsspec.GRANT_NAME_MAX_CHARS - len(GRANT_PREFIX)
    assert defs["grant"]["properties"]["name"]["pattern"] == (
        kmsspec.GRANT_NAME_PATTERN.replace("]+$", f"]{{1,{logical_max}}}$")
    )
    context = defs["encryptionContext"]
    assert context["maxProperties"] == kmsspec.GRANT_CONSTRAINT_MAX_PAIRS
    assert context["additionalProperties"]["maxLength"] == kmsspec.GRANT_CONSTRAINT_VALUE_MAX_CHARS
