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
    info = LockInfo.new(
        stack="s", who="arn", command="apply", now=datetime(2026, 1, 1, tzinfo=timezone.utc)
    )
    assert LockInfo.from_json(info.to_json()) == info
    assert info.created == "2026-01-01T00:00:00+00:00"
    foreign = LockInfo.from_json('{"ID": "tf", "pid": "x"}')
    assert (foreign.id, foreign.pid, foreign.held_for(datetime.now(timezone.utc))) == (
        "?",
        0,
        "an unknown time",
    )
    assert LockInfo.from_json("not json").id == "?"


# ---- what moto does not do: covered with botocore's Stubber ----------------------------------


def test_an_s3_conflict_between_two_conditional_writes_means_held() -> None:
    # Real S3 answers 409 ConditionalRequestConflict to a conditional PutObject racing another
    # one on the same key; moto serialises the requests and never does.
    import boto3
    from botocore.stub import Stubber

    from kmsplan.aws.lock import S3LockStore

    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    store = S3LockStore(s3, LockUrl.parse("s3://locks/p"), "p/1/us-east-1/s.lock")
    info = LockInfo.new(
        stack="s", who="arn", command="apply", now=datetime(2026, 1, 1, tzinfo=timezone.utc)
    )
    with Stubber(s3) as stub:
        stub.add_client_error("put_object", "ConditionalRequestConflict", http_status_code=409)
        assert store.put(info) is False
        stub.assert_no_pending_responses()


def test_the_sigterm_handler_is_restored_when_the_lock_is_released(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import signal

    import kmsplan.run.lock as run_lock
    from kmsplan.model import Placement
    from kmsplan.run import AwsSettings, LockOptions

    class Store:
        where = "s3://locks/s.lock"

        def __init__(self) -> None:
            self.deleted: list[str] = []

        def put(self, info: LockInfo) -> bool:
            return True

        def read(self) -> LockInfo | None:
            return None

        def delete(self, lock_id: str) -> bool:
            self.deleted.append(lock_id)
            return True

    store = Store()
    monkeypatch.setattr(run_lock, "open_store", lambda *a, **k: store)
    before = signal.getsignal(signal.SIGTERM)
    lock = run_lock.lock_for(
        LockOptions(url="s3://locks"), None, caller_arn="arn", aws=AwsSettings()
    )
    seen: list[object] = []

    with (
        pytest.raises(KeyboardInterrupt),
        run_lock.stack_lock("s", Placement(account_id="1", region="r"), lock),
    ):
        seen.append(signal.getsignal(signal.SIGTERM))
        signal.raise_signal(signal.SIGTERM)

    assert seen and seen[0] is not before
    assert signal.getsignal(signal.SIGTERM) is before
    assert len(store.deleted) == 1
