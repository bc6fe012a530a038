"""Drill 2: two concurrent writers on one table (an SCD2 merge and a maintenance OPTIMIZE).

Pass criterion: ``lakehouse.scd2.engine.apply_scd2`` (its own retry switched off) and
``OPTIMIZE`` run in two threads of one application against the same SCD2 table, each
through ``lakehouse.writes.retry.retry_on_conflict``; both finish, directly or after a bounded
retry of a Delta commit conflict; the final table equals the table produced by running
the same operations one after the other on a second path, with exactly one OPTIMIZE in
the history and the change batch applied once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.scd2.engine import SCD2Spec, apply_scd2
from lakehouse.writes.retry import RetryPolicy, retry_on_conflict

SCHEMA = "id long, seq long, v string"
SPEC = SCD2Spec(keys=["id"], sequence_by="seq")
INITIAL = [[(i, 1, "old") for i in range(lo, lo + 3)] for lo in (0, 3, 6)]
CHANGES = [(i, 2, "new") for i in range(4, 12)]


def _prepare(spark: SparkSession, path: str) -> None:
    for batch in INITIAL:  # three commits -> several small files for OPTIMIZE to compact
        apply_scd2(spark, path, spark.createDataFrame(batch, SCHEMA).coalesce(1), SPEC)


def _read(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path).orderBy("id", "valid_from")


@pytest.mark.slow
def test_scd2_merge_and_optimize_concurrently(spark: SparkSession, tmp_path: Path) -> None:
    path, serial = str(tmp_path / "t"), str(tmp_path / "serial")
    _prepare(spark, path)
    _prepare(spark, serial)
    apply_scd2(spark, serial, spark.createDataFrame(CHANGES, SCHEMA), SPEC)
    DeltaTable.forPath(spark, serial).optimize().executeCompaction()

    marker = tmp_path / "merge-running"
    retries: dict[str, int] = {"scd2": 0, "optimize": 0}
    errors: list[BaseException] = []
    policy = RetryPolicy(attempts=5, base_delay_s=0.2, max_delay_s=2.0)

    def slow(v: str) -> str:
        import time as t

        open(str(marker), "a").close()
        t.sleep(0.5)
        return v

    def scd2() -> None:
        changes = spark.createDataFrame(CHANGES, SCHEMA).withColumn("v", F.udf(slow, "string")("v"))
        apply_scd2(spark, path, changes, SPEC, max_retries=0)

    def optimize() -> None:
        while not marker.exists():
            time.sleep(0.1)
        DeltaTable.forPath(spark, path).optimize().executeCompaction()

    def run(name: str, op: Callable[[], None]) -> None:
        def count(n: int, exc: BaseException) -> None:
            retries[name] = n

        try:
            retry_on_conflict(op, policy=policy, describe=name, on_retry=count)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("scd2", scd2)),
        threading.Thread(target=run, args=("optimize", optimize)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1200)
    assert errors == []
    print(f"drill 2 retries: {retries}")

    assert_df_equality(_read(spark, path), _read(spark, serial))
    ops = [r.operation for r in DeltaTable.forPath(spark, path).history().collect()]
    assert ops.count("OPTIMIZE") == 1
    current = {r.id: r.v for r in _read(spark, path).where("is_current").collect()}
    assert current == {**dict.fromkeys(range(0, 4), "old"), **dict.fromkeys(range(4, 12), "new")}
