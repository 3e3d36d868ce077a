"""The local emulator answers multi-Region key calls as KMS does (kmsplan.local_kms_patches).

Each test shows one KMS behaviour that plain moto 5.2 gets wrong; the fixtures' server is the
patched emulator, so every integration test sees these answers. What the emulator cannot show
(a replica staying ``Creating`` for a while) is covered with botocore's Stubber in
tests/unit/aws/ and tests/unit/apply/.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

PRIMARY = "us-east-1"
REPLICA = "eu-west-1"
OTHER = "ap-southeast-2"


def kms(endpoint: str, region: str) -> Any:
    return boto3.client("kms", endpoint_url=endpoint, region_name=region)


def multi_region_key(endpoint: str, **extra: Any) -> str:
    answer = kms(endpoint, PRIMARY).create_key(MultiRegion=True, Description="primary", **extra)
    return str(answer["KeyMetadata"]["KeyId"])


def mrk_config(endpoint: str, region: str, key_id: str) -> dict[str, Any]:
    metadata = kms(endpoint, region).describe_key(KeyId=key_id)["KeyMetadata"]
    return dict(metadata["MultiRegionConfiguration"])


def test_the_primary_stays_primary_after_replicate_key(endpoint: str) -> None:
    key_id = multi_region_key(endpoint)
    kms(endpoint, PRIMARY).replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)
    kms(endpoint, PRIMARY).replicate_key(KeyId=key_id, ReplicaRegion=OTHER)
    kms(endpoint, REPLICA).describe_key(KeyId=key_id)  # plain moto rewrites the primary here

    primary = mrk_config(endpoint, PRIMARY, key_id)
    replica = mrk_config(endpoint, REPLICA, key_id)

    assert primary["MultiRegionKeyType"] == "PRIMARY"
    assert replica["MultiRegionKeyType"] == "REPLICA"
    assert primary["PrimaryKey"]["Region"] == replica["PrimaryKey"]["Region"] == PRIMARY
    assert sorted(r["Region"] for r in primary["ReplicaKeys"]) == [OTHER, REPLICA]
    assert sorted(r["Region"] for r in replica["ReplicaKeys"]) == [OTHER, REPLICA]


def test_a_replica_takes_its_own_description_policy_and_tags(endpoint: str) -> None:
    key_id = multi_region_key(endpoint, Tags=[{"TagKey": "team", "TagValue": "primary"}])
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReplicaAdmin",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )
    tags = [{"TagKey": "team", "TagValue": "replica"}]

    answer = kms(endpoint, PRIMARY).replicate_key(
        KeyId=key_id, ReplicaRegion=REPLICA, Description="replica", Policy=policy, Tags=tags
    )

    # KMS answers with the new replica still Creating, and the tags it was given.
    assert answer["ReplicaKeyMetadata"]["KeyState"] == "Creating"
    assert answer["ReplicaKeyMetadata"]["Arn"].split(":")[3] == REPLICA
    assert answer["ReplicaTags"] == tags
    replica = kms(endpoint, REPLICA)
    assert replica.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "replica"
    assert replica.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert json.loads(replica.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == (
        json.loads(policy)
    )
    assert replica.list_resource_tags(KeyId=key_id)["Tags"] == tags
    # The primary keeps its own.
    primary = kms(endpoint, PRIMARY)
    assert primary.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "primary"
    assert primary.list_resource_tags(KeyId=key_id)["Tags"] == [
        {"TagKey": "team", "TagValue": "primary"}
    ]


def test_a_replica_without_description_or_tags_has_none(endpoint: str) -> None:
    key_id = multi_region_key(endpoint, Tags=[{"TagKey": "team", "TagValue": "primary"}])

    kms(endpoint, PRIMARY).replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)

    replica = kms(endpoint, REPLICA)
    assert replica.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == ""
    assert replica.list_resource_tags(KeyId=key_id)["Tags"] == []


def test_aliases_and_grants_stay_in_their_region(endpoint: str) -> None:
    key_id = multi_region_key(endpoint)
    primary = kms(endpoint, PRIMARY)
    primary.create_alias(AliasName="alias/orders", TargetKeyId=key_id)
    primary.create_grant(
        KeyId=key_id, GranteePrincipal="arn:aws:iam::123456789012:root", Operations=["Decrypt"]
    )

    primary.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)
    replica = kms(endpoint, REPLICA)
    replica.create_alias(AliasName="alias/orders-eu", TargetKeyId=key_id)

    def names(client: Any) -> list[str]:
        names = (a["AliasName"] for a in client.list_aliases()["Aliases"])
        return sorted(n for n in names if not n.startswith("alias/aws/"))

    assert names(primary) == ["alias/orders"]
    assert names(replica) == ["alias/orders-eu"]
    assert replica.list_grants(KeyId=key_id)["Grants"] == []
    assert len(primary.list_grants(KeyId=key_id)["Grants"]) == 1


@pytest.mark.parametrize("region", [REPLICA, PRIMARY])
def test_a_region_that_holds_a_key_of_the_set_cannot_get_another(
    endpoint: str, region: str
) -> None:
    key_id = multi_region_key(endpoint)
    primary = kms(endpoint, PRIMARY)
    primary.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)

    with pytest.raises(ClientError) as refused:
        primary.replicate_key(KeyId=key_id, ReplicaRegion=region)

    assert refused.value.response["Error"]["Code"] == "AlreadyExistsException"
    assert region in refused.value.response["Error"]["Message"]
    regions = [r["Region"] for r in mrk_config(endpoint, PRIMARY, key_id)["ReplicaKeys"]]
    assert regions == [REPLICA]


def test_a_single_region_key_cannot_be_replicated(endpoint: str) -> None:
    primary = kms(endpoint, PRIMARY)
    key_id = primary.create_key()["KeyMetadata"]["KeyId"]

    with pytest.raises(ClientError) as refused:
        primary.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)

    assert refused.value.response["Error"]["Code"] == "UnsupportedOperationException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert kms(endpoint, REPLICA).list_keys()["Keys"] == []


def test_a_replica_cannot_be_replicated(endpoint: str) -> None:
    key_id = multi_region_key(endpoint)
    kms(endpoint, PRIMARY).replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)

    with pytest.raises(ClientError) as refused:
        kms(endpoint, REPLICA).replicate_key(KeyId=key_id, ReplicaRegion=OTHER)

    assert refused.value.response["Error"]["Code"] == "UnsupportedOperationException"
    assert kms(endpoint, OTHER).list_keys()["Keys"] == []


def test_update_primary_region_swaps_primary_and_replica(endpoint: str) -> None:
    key_id = multi_region_key(endpoint)
    primary = kms(endpoint, PRIMARY)
    primary.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)
    primary.replicate_key(KeyId=key_id, ReplicaRegion=OTHER)

    primary.update_primary_region(KeyId=key_id, PrimaryRegion=REPLICA)

    for region in (PRIMARY, REPLICA, OTHER):
        config = mrk_config(endpoint, region, key_id)
        assert config["PrimaryKey"]["Region"] == REPLICA
        assert config["MultiRegionKeyType"] == ("PRIMARY" if region == REPLICA else "REPLICA")
        assert sorted(r["Region"] for r in config["ReplicaKeys"]) == [OTHER, PRIMARY]


def test_update_primary_region_needs_a_replica_there(endpoint: str) -> None:
    key_id = multi_region_key(endpoint)

    with pytest.raises(ClientError) as refused:
        kms(endpoint, PRIMARY).update_primary_region(KeyId=key_id, PrimaryRegion=REPLICA)

    assert refused.value.response["Error"]["Code"] == "NotFoundException"
    assert mrk_config(endpoint, PRIMARY, key_id)["MultiRegionKeyType"] == "PRIMARY"
