"""The data root's run lock: one run at a time, a lease that a dead run cannot hold forever."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lakehouse.pipeline.lock import RunLock, RunLockedError, read_lock


def test_a_second_run_is_refused_naming_the_first(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "_run.lock")
    with RunLock(spark, path, "batch-A", lease_s=60):
        held = read_lock(spark, path)
        assert held is not None and held["batch_id"] == "batch-A"
        with pytest.raises(RunLockedError, match=r"locked by run 'batch-A' \(.+:\d+\) until"):
            RunLock(spark, path, "batch-B").acquire()
    assert read_lock(spark, path) is None  # released
    with RunLock(spark, path, "batch-B"):
        assert read_lock(spark, path)["batch_id"] == "batch-B"


def test_an_expired_lease_is_broken_and_a_live_one_renewed(spark, tmp_path: Path) -> None:
    path = tmp_path / "_run.lock"
    # a run that died: its lock file stays, with a lease that ran out
    path.write_text(json.dumps({"batch_id": "dead", "owner": "h:1", "expires_at": time.time() - 1}))
    lock = RunLock(spark, str(path), "alive", lease_s=1.5).acquire()
    try:
        first = json.loads(path.read_text())["expires_at"]
        time.sleep(1.2)  # the renewal thread runs every lease / 3
        assert json.loads(path.read_text())["expires_at"] > first
        with pytest.raises(RunLockedError, match="'alive'"):
            RunLock(spark, str(path), "other").acquire()
    finally:
        lock.release()
    assert not path.exists()


def _held(spark, path: str) -> dict:
    """The lock's content; fails the test if there is no lock."""
    held = read_lock(spark, path)
    assert held is not None, f"no lock at {path}"
    return held


@pytest.fixture()
def s3_lock(aws_endpoint: str) -> str:
    """A lock path on a bucket of the local S3 API (moto)."""
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    s3.delete_object(Bucket="lake", Key="lakehouse/_run.lock")  # an earlier test's lock
    return "s3a://lake/lakehouse/_run.lock"


def test_on_s3_one_run_holds_the_lock_and_a_second_is_refused(spark, s3_lock: str) -> None:
    with RunLock(spark, s3_lock, "batch-A", lease_s=60):
        assert _held(spark, s3_lock)["batch_id"] == "batch-A"
        with pytest.raises(RunLockedError, match=r"locked by run 'batch-A'"):
            RunLock(spark, s3_lock, "batch-B").acquire()
    assert read_lock(spark, s3_lock) is None
    with RunLock(spark, s3_lock, "batch-B"):
        assert _held(spark, s3_lock)["batch_id"] == "batch-B"


def test_on_s3_an_expired_lock_is_taken_over_by_exactly_one_run(spark, s3_lock: str) -> None:
    """Two runs that both saw the expired lock race to take it over: the conditional put
    (If-Match on the ETag they read) lets one win; the other is refused."""
    import boto3

    s3 = boto3.client("s3")
    dead = {"batch_id": "dead", "owner": "h:1", "expires_at": time.time() - 1}
    s3.put_object(Bucket="lake", Key="lakehouse/_run.lock", Body=json.dumps(dead).encode())
    first, second = RunLock(spark, s3_lock, "first"), RunLock(spark, s3_lock, "second")
    seen_by_second = second.store.read()  # read before the first run takes over
    first.acquire()
    try:
        assert second.store.take_over("{}", seen_by_second[1]) is None  # its ETag is stale
        with pytest.raises(RunLockedError, match="'first'"):
            second.acquire()
    finally:
        first.release()
    assert read_lock(spark, s3_lock) is None


def test_on_s3_a_run_whose_lock_was_replaced_stops_renewing(spark, s3_lock: str) -> None:
    import boto3

    lock = RunLock(spark, s3_lock, "alive", lease_s=1.5).acquire()
    try:
        first = _held(spark, s3_lock)["expires_at"]
        time.sleep(1.2)  # renewed every lease / 3, with If-Match on its own last ETag
        assert _held(spark, s3_lock)["expires_at"] > first
        other = {"batch_id": "other", "owner": "h:2", "expires_at": time.time() + 60}
        boto3.client("s3").put_object(
            Bucket="lake", Key="lakehouse/_run.lock", Body=json.dumps(other).encode()
        )
        time.sleep(1.0)
        assert _held(spark, s3_lock)["batch_id"] == "other"
    finally:
        lock.release()  # not ours any more: left in place
    assert _held(spark, s3_lock)["batch_id"] == "other"


class _FirstPutConflicts:
    """An S3 client whose first conditional put answers 409, as S3 does to each of two
    simultaneous creates; everything else goes to the real client."""

    def __init__(self, client) -> None:
        self.client, self.conflicts = client, 1

    def put_object(self, **kwargs):
        from botocore.exceptions import ClientError

        if self.conflicts:
            self.conflicts -= 1
            error = {"Code": "ConditionalRequestConflict", "Message": "conflict"}
            raise ClientError({"Error": error}, "PutObject")
        return self.client.put_object(**kwargs)

    def __getattr__(self, name: str):
        return getattr(self.client, name)


def test_on_s3_a_create_that_conflicted_with_no_lock_made_is_tried_again(
    spark, s3_lock: str
) -> None:
    import boto3

    from lakehouse.pipeline.lock import _S3Lock

    lock = RunLock(spark, s3_lock, "batch-A", lease_s=60)
    lock._lock = _S3Lock(s3_lock, _FirstPutConflicts(boto3.client("s3")))
    with lock:
        assert _held(spark, s3_lock)["batch_id"] == "batch-A"
    assert read_lock(spark, s3_lock) is None


def test_on_s3_the_lock_uses_the_s3_api_spark_is_set_to(
    spark, s3_lock: str, aws_endpoint: str, monkeypatch
) -> None:
    """With boto3's own endpoint unset, the lock reaches the local S3 API through the
    session's S3A settings (``spark.s3a.endpoint`` / ``path_style_access``)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    keys = {"fs.s3a.endpoint": aws_endpoint, "fs.s3a.path.style.access": "true"}
    for key, value in keys.items():
        hadoop.set(key, value)
    try:
        with RunLock(spark, s3_lock, "batch-A", lease_s=60) as lock:
            assert lock.store.client.meta.endpoint_url == aws_endpoint
            assert lock.store.read()[0]["batch_id"] == "batch-A"
    finally:
        for key in keys:
            hadoop.unset(key)
