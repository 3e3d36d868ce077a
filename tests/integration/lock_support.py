"""Helpers for stack-lock tests against the moto server: a lock bucket, a lock table, and
every lock left behind in either."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from apply_support import ACCOUNT, client

from kmsplan.aws.lock import LockInfo, LockUrl, lock_store

BUCKET = "kmsplan-locks"
TABLE = "kmsplan-locks"


def make_bucket(endpoint: str) -> str:
    """The bucket; returns the lock URL naming it."""
    client(endpoint, "s3").create_bucket(Bucket=BUCKET)
    return f"s3://{BUCKET}/kmsplan"


def make_table(endpoint: str) -> str:
    """A table shaped like Terraform's lock table; returns the lock URL naming it."""
    client(endpoint, "dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return f"dynamodb://{TABLE}"


def lock_objects(endpoint: str) -> list[str]:
    """Every lock left behind, in the bucket and the table (either may not exist)."""
    left = []
    s3 = client(endpoint, "s3")
    if BUCKET in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        left += [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    dynamodb = client(endpoint, "dynamodb")
    if TABLE in dynamodb.list_tables()["TableNames"]:
        left += [i["LockID"]["S"] for i in dynamodb.scan(TableName=TABLE)["Items"]]
    return left


def held_by_another_run(
    endpoint: str, url: str, *, stack: str, region: str
) -> tuple[Any, LockInfo]:
    """`stack`'s lock at `url`, taken by another run (a CI user's apply); returns the store
    and the lock, for the test to release it."""
    store = lock_store(
        LockUrl.parse(url),
        account_id=ACCOUNT,
        region=region,
        stack=stack,
        profile=None,
        endpoint_url=endpoint,
    )
    holder = LockInfo.new(
        stack=stack,
        who=f"arn:aws:iam::{ACCOUNT}:user/ci",
        command="apply",
        now=datetime(2026, 1, 2, tzinfo=timezone.utc),
    )
    assert store.put(holder)
    return store, holder
