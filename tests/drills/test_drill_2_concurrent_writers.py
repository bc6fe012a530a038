"""Drill 2: two concurrent writers on one table (a MERGE and a maintenance OPTIMIZE).

Pass criterion: both operations finish, either directly or after a bounded retry of a
Delta commit conflict (``lakehouse.retry``); the final table equals the result of running
them one after the other (built independently), the MERGE is applied exactly once, and
the OPTIMIZE is in the history.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from lakehouse.idempotency import txn_identity
from lakehouse.retry import RetryPolicy, retry_on_conflict
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

SCHEMA = "id long, v string"


@pytest.mark.slow
def test_merge_and_optimize_concurrently(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    for lo in (0, 3, 6):  # three small files for OPTIMIZE to compact
        spark.createDataFrame([(i, "old") for i in range(lo, lo + 3)], SCHEMA).coalesce(
            1
        ).write.format("delta").mode("append").save(path)
    marker = tmp_path / "merge-running"
    retries: dict[str, int] = {"merge": 0, "optimize": 0}
    errors: list[BaseException] = []
    policy = RetryPolicy(attempts=5, base_delay_s=0.2, max_delay_s=2.0)
    merge_session = spark.newSession()  # own SQL confs: the txn identity stays on this writer

    def slow(x: int) -> int:
        import time as t

        open(str(marker), "a").close()
        t.sleep(1)
        return x

    def merge() -> None:
        src = merge_session.createDataFrame([(i, "new") for i in range(4, 12)], SCHEMA)
        src = src.withColumn("id", F.udf(slow, "long")("id"))
        with txn_identity("drill2", "b1", table="t").session(merge_session):
            (
                DeltaTable.forPath(merge_session, path).alias("t")
                .merge(src.alias("s"), "t.id = s.id")
                .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
            )  # fmt: skip

    def optimize() -> None:
        while not marker.exists():
            time.sleep(0.1)
        DeltaTable.forPath(spark, path).optimize().executeCompaction()

    def run(name: str, op) -> None:
        try:
            retry_on_conflict(
                op, policy=policy, describe=name,
                on_retry=lambda n, exc: retries.__setitem__(name, n),
            )  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("merge", merge)),
        threading.Thread(target=run, args=("optimize", optimize)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert errors == []
    print(f"drill 2 retries: {retries}")

    expected = [(i, "old") for i in range(0, 4)] + [(i, "new") for i in range(4, 12)]
    assert_df_equality(
        spark.read.format("delta").load(path),
        spark.createDataFrame(expected, SCHEMA),
        ignore_row_order=True,
    )
    ops = [r.operation for r in DeltaTable.forPath(spark, path).history().collect()]
    assert ops.count("MERGE") == 1
    assert ops.count("OPTIMIZE") == 1
