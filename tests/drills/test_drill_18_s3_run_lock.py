"""Drill 18: the run lock on an S3 data root admits one run, across hosts.

On local disk the lock is a file created with ``O_EXCL``; on S3 it is an object written
with conditional requests (``If-None-Match: *`` to create, ``If-Match: <ETag>`` to renew or
take over an expired lock). The drill races runs against the local S3 API (moto on
127.0.0.1), each with its own S3 client as separate hosts would have.

Pass criteria, over 10 rounds each:

* 8 runs acquire a free lock at the same moment: exactly one holds it, the other 7 are
  refused naming it;
* 8 runs find the same expired lock (a run that died) and take it over at the same
  moment: exactly one holds it, the other 7 are refused.
"""

from __future__ import annotations

import json
import threading
import time

import boto3
from pyspark.sql import SparkSession

from lakehouse.pipeline.lock import RunLock, RunLockedError, read_lock

RUNS = 8
ROUNDS = 10
KEY = "lakehouse/_run.lock"
PATH = f"s3a://drill/{KEY}"


def _race(spark: SparkSession, tag: str) -> tuple[list[RunLock], list[str]]:
    """RUNS runs call acquire() at once; the ones that got the lock, and the refusals."""
    runs = [RunLock(spark, PATH, f"{tag}-{i}", lease_s=60) for i in range(RUNS)]
    for run in runs:
        run.store.client = boto3.session.Session().client("s3")  # one client per "host"
    start = threading.Barrier(RUNS)
    won: list[RunLock] = []
    refused: list[str] = []

    def attempt(run: RunLock) -> None:
        start.wait()
        try:
            won.append(run.acquire())
        except RunLockedError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=attempt, args=(run,)) for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return won, refused


def test_racing_runs_never_share_the_s3_lock(spark: SparkSession, aws_endpoint: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="drill")
    for n in range(ROUNDS):
        won, refused = _race(spark, f"free{n}")
        assert len(won) == 1 and len(refused) == RUNS - 1, (won, refused)
        assert (read_lock(spark, PATH) or {}).get("batch_id") == won[0].batch_id
        assert all(won[0].batch_id in r or "another run took" in r for r in refused), refused
        won[0].release()
        assert read_lock(spark, PATH) is None

    for n in range(ROUNDS):
        dead = {"batch_id": f"dead{n}", "owner": "gone:1", "expires_at": time.time() - 1}
        s3.put_object(Bucket="drill", Key=KEY, Body=json.dumps(dead).encode())
        won, refused = _race(spark, f"expired{n}")
        assert len(won) == 1 and len(refused) == RUNS - 1, (won, refused)
        assert (read_lock(spark, PATH) or {}).get("batch_id") == won[0].batch_id
        won[0].release()
    print(f"drill 18: {2 * ROUNDS} races of {RUNS} runs, one holder each time")
