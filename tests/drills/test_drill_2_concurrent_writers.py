"""Drill 2: two concurrent writers on one table (an SCD2 merge and a maintenance OPTIMIZE).

Pass criterion: ``lakehouse.scd2.apply_scd2`` (with its own retry on Delta commit
conflicts) and ``OPTIMIZE`` (through ``lakehouse.writes.retry.retry_on_conflict``) run in two
threads of one application against the same SCD2 table. The OPTIMIZE commits while the
MERGE is running (the MERGE's source waits for it), so the MERGE's commit conflicts: it
must be retried at least once (``metrics["retries"] >= 1``), both writers finish, and the
final table equals the table produced by running the same operations one after the other
on a second path, with exactly one OPTIMIZE in the history and the change batch applied
once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.scd2 import SCD2Spec, apply_scd2
from lakehouse.scd2 import apply as scd2_apply
from lakehouse.writes.retry import RetryPolicy, retry_on_conflict

SCHEMA = "id long, seq long, v string"
SPEC = SCD2Spec(keys=["id"], sequence_by="seq")
INITIAL = [[(i, 1, "old") for i in range(lo, lo + 3)] for lo in (0, 3, 6)]
CHANGES = [(i, 2, "new") for i in range(4, 12)]
POLICY = RetryPolicy(attempts=5, base_delay_s=0.2, max_delay_s=2.0)
GATE_TIMEOUT_S = 300.0


def _prepare(spark: SparkSession, path: str) -> None:
    for batch in INITIAL:  # three commits -> several small files for OPTIMIZE to compact
        apply_scd2(spark, path, spark.createDataFrame(batch, SCHEMA).coalesce(1), SPEC)


def _read(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path).orderBy("id", "valid_from")


def _gated_first_merge(monkeypatch: pytest.MonkeyPatch, running: Path, optimized: Path) -> None:
    """Make the first MERGE of ``apply_scd2`` wait, inside its execution (its transaction
    has read the table), until the OPTIMIZE has committed; later MERGEs run as they are."""
    real = scd2_apply.merge_difference
    calls = [0]

    def wait_for_optimize(v: str) -> str:
        import os.path  # runs in a Python worker
        import time as t

        open(str(running), "a").close()
        deadline = t.monotonic() + GATE_TIMEOUT_S
        while not os.path.exists(str(optimized)) and t.monotonic() < deadline:
            t.sleep(0.1)
        return v

    def gated(table: Any, source: DataFrame, *args: Any) -> None:
        calls[0] += 1
        if calls[0] == 1:
            source = source.withColumn("v", F.udf(wait_for_optimize, "string")("v"))
        real(table, source, *args)

    monkeypatch.setattr(scd2_apply, "merge_difference", gated)


@pytest.mark.slow
def test_scd2_merge_and_optimize_concurrently(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, serial = str(tmp_path / "t"), str(tmp_path / "serial")
    _prepare(spark, path)
    _prepare(spark, serial)
    apply_scd2(spark, serial, spark.createDataFrame(CHANGES, SCHEMA), SPEC)
    DeltaTable.forPath(spark, serial).optimize().executeCompaction()

    running, optimized = tmp_path / "merge-running", tmp_path / "optimize-committed"
    _gated_first_merge(monkeypatch, running, optimized)
    retries: dict[str, int] = {"scd2": 0, "optimize": 0}
    errors: list[BaseException] = []

    def scd2() -> None:
        changes = spark.createDataFrame(CHANGES, SCHEMA)
        result = apply_scd2(spark, path, changes, SPEC, retry=POLICY)
        retries["scd2"] = result.metrics["retries"]

    def optimize() -> None:
        while not running.exists():
            time.sleep(0.1)

        def count(n: int, exc: BaseException) -> None:
            retries["optimize"] = n

        try:
            retry_on_conflict(
                lambda: DeltaTable.forPath(spark, path).optimize().executeCompaction(),
                policy=POLICY,
                describe="optimize",
                on_retry=count,
            )
        finally:
            optimized.touch()

    def run(op: Callable[[], None]) -> None:
        try:
            op()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(op,)) for op in (scd2, optimize)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1200)
    assert errors == []
    print(f"drill 2 retries: {retries}")
    # The OPTIMIZE committed while the MERGE ran, so apply_scd2 must have retried it.
    assert retries["scd2"] >= 1

    assert_df_equality(_read(spark, path), _read(spark, serial))
    ops = [r.operation for r in DeltaTable.forPath(spark, path).history().collect()]
    assert ops.count("OPTIMIZE") == 1
    current = {r.id: r.v for r in _read(spark, path).where("is_current").collect()}
    assert current == {**dict.fromkeys(range(0, 4), "old"), **dict.fromkeys(range(4, 12), "new")}
