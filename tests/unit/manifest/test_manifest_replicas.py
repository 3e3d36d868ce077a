"""`replicas:` on multi-Region keys: defaults from the primary, and the rules KMS sets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kmsplan.errors import ValidationFailed
from kmsplan.manifest import load, resolve_variables
from kmsplan.model import Replica

POLICY = """
              Version: "2012-10-17"
              Statement:
                - Sid: Admin
                  Effect: Allow
                  Principal: {AWS: "arn:aws:iam::${account_id}:root"}
                  Action: "kms:*"
                  Resource: "*"
                - Sid: Logs
                  Effect: Allow
                  Principal: {Service: "logs.${region}.amazonaws.com"}
                  Action: "kms:Encrypt"
                  Resource: "*"
"""


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return str(path)


def errors(paths: list[str]) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        load(paths)
    return [d.render() for d in info.value.diagnostics]


def test_replicas_take_the_primarys_description_tags_and_policy_unless_they_say_otherwise(
    tmp_path: Path,
) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        f"""
        version: 1
        stack: s
        region: us-east-1
        defaults:
          tags: {{env: prod}}
        keys:
          orders:
            multi_region: true
            description: orders data
            aliases: [alias/orders]
            tags: {{team: orders}}
            policy:{POLICY}
            replicas:
              eu-west-1:
                aliases: [alias/orders, alias/orders-eu]
              ap-southeast-2:
                description: orders data (Sydney)
                enabled: false
                tags: {{team: apac}}
    """,
    )

    (key,) = load([manifest]).keys

    eu, ap = key.replica("eu-west-1"), key.replica("ap-southeast-2")
    assert [r.region for r in key.replicas] == ["ap-southeast-2", "eu-west-1"]
    assert isinstance(eu, Replica) and isinstance(ap, Replica)
    assert (eu.description, eu.enabled, eu.aliases) == (
        "orders data",
        True,
        ("alias/orders", "alias/orders-eu"),
    )
    assert eu.tags == key.tags == (("env", "prod"), ("team", "orders"))
    assert eu.policy == key.policy
    assert (ap.description, ap.enabled, ap.aliases) == ("orders data (Sydney)", False, ())
    assert ap.tags == (("env", "prod"), ("team", "apac"))
    assert eu.location is not None and eu.location.line == 27


def test_a_replica_policy_gets_its_own_region(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        f"""
        version: 1
        stack: s
        keys:
          orders:
            multi_region: true
            policy:{POLICY}
            replicas:
              eu-west-1:
                policy:{textwrap.indent(textwrap.dedent(POLICY), " " * 18)}
              ap-southeast-2: {{}}
    """,
    )

    resolved = resolve_variables(load([manifest]), account_id="111122223333", region="us-east-1")

    (key,) = resolved.keys
    services = {
        where: policy["Statement"][1]["Principal"]["Service"]
        for where, policy in (
            ("primary", key.policy),
            ("eu-west-1", key.replicas[1].policy),
            ("ap-southeast-2", key.replicas[0].policy),
        )
        if policy is not None
    }
    # ${region} in a replica's policy, its own or the primary's, is the replica's Region.
    assert services == {
        "primary": "logs.us-east-1.amazonaws.com",
        "eu-west-1": "logs.eu-west-1.amazonaws.com",
        "ap-southeast-2": "logs.ap-southeast-2.amazonaws.com",
    }


def test_replicas_on_a_single_region_key_explain_that_multi_region_is_fixed(
    tmp_path: Path,
) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        keys:
          orders:
            replicas:
              eu-west-1: {}
    """,
    )

    assert errors([manifest]) == [
        f"{manifest}:5:5: error: keys.orders.replicas: replicas need a multi-Region key, and "
        "this key is single-Region (multi_region is not true); a key cannot become "
        "multi-Region after it is created (multi_region: true on a new key (a new logical "
        "name), or no replicas)"
    ]


def test_a_replica_in_the_primarys_region_is_refused(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        region: eu-west-1
        keys:
          orders:
            multi_region: true
            replicas:
              eu-west-1: {}
    """,
    )

    assert errors([manifest]) == [
        f"{manifest}:8:7: error: keys.orders.replicas.eu-west-1: eu-west-1 is the stack's "
        "Region, where the primary key is (replicas in other Regions only)"
    ]


def test_a_region_listed_twice_is_refused(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        keys:
          orders:
            multi_region: true
            replicas:
              eu-west-1: {}
              eu-west-1: {enabled: false}
    """,
    )

    assert errors([manifest]) == [
        f'{manifest}:8:7: error: keys.orders.replicas.eu-west-1: duplicate key "eu-west-1" '
        "(first at line 7) (each key once per mapping)"
    ]


def test_a_region_name_must_look_like_one(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        keys:
          orders:
            multi_region: true
            replicas:
              Ireland: {}
    """,
    )

    assert errors([manifest]) == [
        f'{manifest}:7:7: error: keys.orders.replicas.Ireland: "Ireland" is not a valid name '
        "(a Region name such as eu-west-1)"
    ]


def test_alias_names_are_unique_per_region(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        keys:
          orders:
            multi_region: true
            aliases: [alias/shared]
            replicas:
              eu-west-1: {aliases: [alias/shared, alias/eu]}
          billing:
            multi_region: true
            aliases: [alias/billing]
            replicas:
              eu-west-1: {aliases: [alias/eu]}
              us-west-2: {aliases: [alias/shared]}
    """,
    )

    assert errors([manifest]) == [
        f"{manifest}:13:29: error: keys.billing.replicas.eu-west-1.aliases[0]: alias "
        f'"alias/eu" is already used in eu-west-1 by key "orders" ({manifest}:8) (each alias '
        "on one key only)"
    ]


def test_replica_tags_and_policies_follow_the_usual_rules(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        keys:
          orders:
            multi_region: true
            replicas:
              eu-west-1:
                aliases: [alias/aws/mine]
                tags: {"aws:owner": me}
                policy:
                  Version: "2012-10-17"
                  Statement:
                    - Effect: Allow
                      Principal: {AWS: "arn:aws:iam::111122223333:root"}
                      Action: "kms:*"
                      Resource: "*"
                      Bogus: 1
    """,
    )

    found = errors([manifest])

    assert any("replicas.eu-west-1.aliases[0]" in e and "reserved prefix" in e for e in found)
    assert any("replicas.eu-west-1.tags" in e and 'reserved prefix "aws:"' in e for e in found)
    assert any("replicas.eu-west-1.policy" in e and "Bogus" in e for e in found)
    assert len(found) == 3


def test_unknown_replica_fields_are_refused(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: s
        keys:
          orders:
            multi_region: true
            replicas:
              eu-west-1: {rotation: {enabled: true}}
    """,
    )

    (problem,) = errors([manifest])
    assert "keys.orders.replicas.eu-west-1" in problem and "rotation" in problem
