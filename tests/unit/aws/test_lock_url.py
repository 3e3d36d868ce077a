"""Lock URLs and lock bodies: parsed strictly, read back leniently."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kmsplan.aws.lock import LockError, LockInfo, LockUrl
from kmsplan.run.lock import lock_url


@pytest.mark.parametrize(
    ("url", "scheme", "container", "prefix"),
    [
        ("s3://my-locks/kmsplan/prod", "s3", "my-locks", "kmsplan/prod"),
        ("s3://my-locks/kmsplan/", "s3", "my-locks", "kmsplan"),
        ("s3://my-locks", "s3", "my-locks", ""),
        ("dynamodb://terraform-locks", "dynamodb", "terraform-locks", ""),
    ],
)
def test_lock_urls_are_parsed_into_their_store(
    url: str, scheme: str, container: str, prefix: str
) -> None:
    parsed = LockUrl.parse(url)
    assert (parsed.scheme, parsed.container, parsed.prefix) == (scheme, container, prefix)


@pytest.mark.parametrize("url", ["s3:/b", "s3://B", "ftp://x", "dynamodb://a b", "", "none "])
def test_anything_else_is_refused_naming_the_forms(url: str) -> None:
    with pytest.raises(LockError) as raised:
        LockUrl.parse(url)
    assert str(raised.value) == (
        f"invalid lock URL {url!r}: expected s3://BUCKET/PREFIX, dynamodb://TABLE, or none "
        "for no lock"
    )


def test_the_lock_address_names_account_region_and_stack() -> None:
    where = LockUrl.parse("s3://locks/ci").where(account_id="1", region="eu-west-1", stack="s")
    assert where == "s3://locks/ci/1/eu-west-1/s.lock"
    table = LockUrl.parse("dynamodb://t1x").where(account_id="1", region="eu-west-1", stack="s")
    assert table == "dynamodb://t1x (LockID kmsplan/1/eu-west-1/s)"


def test_the_option_overrides_the_manifest_and_none_disables_it() -> None:
    declared = "s3://from-manifest"
    assert lock_url(None, declared) == LockUrl.parse("s3://from-manifest")
    assert lock_url("dynamodb://from-option", declared) == LockUrl.parse("dynamodb://from-option")
    assert lock_url("none", declared) is None
    assert lock_url(None, None) is None


def test_a_lock_body_round_trips_and_a_foreign_body_still_reads() -> None:
    info = LockInfo.new(stack="s", who="arn", command="apply",
                        now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert LockInfo.from_json(info.to_json()) == info
    assert info.created == "2026-01-01T00:00:00+00:00"
    foreign = LockInfo.from_json('{"ID": "tf", "pid": "x"}')
    assert (foreign.id, foreign.pid, foreign.held_for(datetime.now(timezone.utc))) == (
        "?", 0, "an unknown time"
    )
    assert LockInfo.from_json("not json").id == "?"
