"""Idempotent writes (Delta txnAppId / txnVersion) and the landing-file ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakehouse.writes.idempotency import (
    SESSION_TXN_APP_ID,
    SESSION_TXN_VERSION,
    SESSION_USER_METADATA,
    batch_commits,
    commit_metadata,
    txn_identity,
)


def test_identity_is_derived_from_job_table_batch_and_step() -> None:
    t = txn_identity("bronze_ingest", "2026-01-01T00:00:00Z", table="bronze_orders", step=1)
    assert t.writer_options() == {
        "txnAppId": "lakehouse/bronze_ingest/bronze_orders/2026-01-01T00:00:00Z",
        "txnVersion": "1",
        "userMetadata": json.dumps(
            {
                "app_id": "lakehouse/bronze_ingest/bronze_orders/2026-01-01T00:00:00Z",
                "batch_id": "2026-01-01T00:00:00Z",
                "job": "bronze_ingest",
                "table": "bronze_orders",
                "txn_version": 1,
            },
            sort_keys=True,
        ),
    }
    assert t.next().version == 2


@pytest.mark.parametrize("batch", ["", "a/b", "x'; DROP", "a" * 129])
def test_bad_batch_ids_are_rejected(batch: str) -> None:
    with pytest.raises(ValueError) as info:
        txn_identity("job", batch, table="t")
    assert str(info.value) == (
        f"invalid batch id {batch!r}: must match [A-Za-z0-9][A-Za-z0-9_.:+-]* "
        "(at most 128 characters)"
    )


def test_rerun_of_a_batch_writes_nothing(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    df = spark.range(3)
    t = txn_identity("job", "b1", table="t")
    t.apply(df.write.format("delta").mode("append")).save(path)
    t.apply(df.write.format("delta").mode("append")).save(path)  # crash + re-run: skipped
    assert DeltaTable.forPath(spark, path).history().count() == 1
    # a second write of the same batch (next step) is applied once
    t.next().apply(spark.range(3, 4).write.format("delta").mode("append")).save(path)
    t.next().apply(spark.range(3, 4).write.format("delta").mode("append")).save(path)
    assert sorted(r.id for r in spark.read.format("delta").load(path).collect()) == [0, 1, 2, 3]

    # MERGE under the session identity: applied once, confs restored afterwards
    def merge() -> None:
        src = spark.range(2, 6)
        (
            DeltaTable.forPath(spark, path).alias("t")
            .merge(src.alias("s"), "t.id = s.id").whenNotMatchedInsertAll().execute()
        )  # fmt: skip

    m = txn_identity("job", "b2", table="t")
    for _ in range(2):
        with m.session(spark):
            merge()
    assert spark.conf.get(SESSION_TXN_APP_ID, None) is None
    assert spark.conf.get(SESSION_TXN_VERSION, None) is None
    assert sorted(r.id for r in spark.read.format("delta").load(path).collect()) == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]
    assert [(c["version"], c["operation"], c["job"]) for c in batch_commits(spark, path, "b2")] == [
        (2, "MERGE", "job")
    ]

    # job-level tagging (pipeline.run_job): any commit inside names the batch
    with commit_metadata(spark, job="job", batch_id="b3"):
        DeltaTable.forPath(spark, path).delete("id = 5")
    assert [(c["version"], c["operation"]) for c in batch_commits(spark, path, "b3")] == [
        (3, "DELETE")
    ]
    assert spark.conf.get(SESSION_USER_METADATA, None) is None


def test_batch_writes_skip_a_committed_write_and_retry_conflicts(
    spark: SparkSession, tmp_path: Path
) -> None:
    from lakehouse.spark.delta import insert_new_rows, table_version
    from lakehouse.writes.idempotency import BatchWrites
    from lakehouse.writes.retry import RetryPolicy

    path = str(tmp_path / "t")
    policy = RetryPolicy(attempts=3, base_delay_s=0.0, max_delay_s=0.0)
    first = BatchWrites("job", "b1", policy=policy)
    assert insert_new_rows(spark, spark.range(3), path, ["id"], writes=first, table="t") == 3
    assert insert_new_rows(spark, spark.range(5), path, ["id"], writes=first, table="t") == 2
    assert table_version(spark, path) == 1

    # The same batch re-run after a crash: both writes already committed, Delta skips them
    # even though the input differs now (the batch's identity, not its content, decides).
    rerun = BatchWrites("job", "b1", policy=policy)
    assert insert_new_rows(spark, spark.range(7), path, ["id"], writes=rerun, table="t") == 0
    rerun.save("t", spark.range(100, 101).write.format("delta").mode("append"), path)
    rerun.save("t", spark.range(101, 102).write.format("delta").mode("append"), path)
    # steps 0 and 1 are <= the batch's last committed txnVersion (1): skipped; step 2 is new
    assert table_version(spark, path) == 2
    assert sorted(r.id for r in spark.read.format("delta").load(path).collect()) == [
        0, 1, 2, 3, 4, 101
    ]  # fmt: skip

    # a commit conflict is retried with the same identity, and only once committed
    class ConcurrentAppendException(Exception):
        pass

    calls = []

    def flaky() -> None:
        calls.append(spark.conf.get(SESSION_TXN_VERSION, None))
        if len(calls) == 1:
            raise ConcurrentAppendException("conflict")
        DeltaTable.forPath(spark, path).delete("id = 101")

    BatchWrites("job", "b2", policy=policy).run(spark, "t", flaky)
    assert calls == ["0", "0"]
    assert spark.conf.get(SESSION_TXN_APP_ID, None) is None
    with pytest.raises(ValueError, match="pass table="):
        insert_new_rows(spark, spark.range(1), path, ["id"], writes=rerun)
