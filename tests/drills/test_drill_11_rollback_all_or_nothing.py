"""Drill 11: a rollback either undoes the whole batch on every table or changes nothing.

The probe (issue 29, item 6) ingested a batch that appended to the three bronze tables and
*created* ``quarantine_bronze``; ``lakehouse rollback --batch-id B`` restored the three
bronze tables, then refused on the quarantine table (rc 2): half applied.

Pass criteria:

* the same shape of batch (appends to existing tables, creates one) rolls back completely,
  exit 0: appended tables are back at their version before the batch, the created table
  is empty, and a second rollback changes nothing;
* a rollback that cannot be done on one table (a later run committed there) exits 2 with
  a message naming that table, and no table has a new version;
* an unknown batch id exits non-zero and changes nothing.
"""

from __future__ import annotations

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakehouse.cli.rollback import main
from lakehouse.config import Settings
from lakehouse.writes.idempotency import txn_identity

BRONZE = ["bronze_customers", "bronze_orders", "bronze_products"]
TABLES = [*BRONZE, "quarantine_bronze"]


def _append(spark: SparkSession, settings: Settings, table: str, ids: range, batch: str) -> None:
    txn = txn_identity("bronze_ingest", batch, table=table)
    df = spark.range(ids.start, ids.stop)
    txn.apply(df.write.format("delta").mode("append")).save(settings.table_path(table))


def _versions(spark: SparkSession, settings: Settings) -> dict[str, int]:
    return {
        t: DeltaTable.forPath(spark, settings.table_path(t)).history(1).first()["version"]
        for t in TABLES
    }


def _counts(spark: SparkSession, settings: Settings) -> dict[str, int]:
    return {t: spark.read.format("delta").load(settings.table_path(t)).count() for t in TABLES}


def _rollback(spark: SparkSession, settings: Settings, batch: str) -> int:
    args = ["--batch-id", batch, *[f"--table={t}" for t in TABLES]]
    return main(args, spark=spark, settings=settings)


def test_rollback_is_all_or_nothing(
    spark: SparkSession, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    for table in BRONZE:
        _append(spark, settings, table, range(0, 3), "b0")  # earlier batch: no quarantine
    for table in BRONZE:
        _append(spark, settings, table, range(3, 5), "b1")
    _append(spark, settings, "quarantine_bronze", range(0, 2), "b1")  # b1 creates it

    # a later batch on one table: rolling back b1 is refused as a whole
    _append(spark, settings, "bronze_orders", range(5, 6), "b2")
    before = _versions(spark, settings)
    assert _rollback(spark, settings, "b1") == 2
    err = capsys.readouterr().err
    assert err.startswith("rollback failed: rollback of batch b1 refused, nothing was changed:\n")
    assert "  bronze_orders: commits [2] landed after batch b1 (last commit v1); " in err
    assert _versions(spark, settings) == before

    # without the later batch (rolled back first), b1 rolls back everywhere at once
    assert _rollback(spark, settings, "b2") == 0
    assert _rollback(spark, settings, "b1") == 0
    assert _counts(spark, settings) == {
        "bronze_customers": 3,
        "bronze_orders": 3,
        "bronze_products": 3,
        "quarantine_bronze": 0,
    }
    done = _versions(spark, settings)
    assert _rollback(spark, settings, "b1") == 0  # again: already rolled back, no new commit
    assert _versions(spark, settings) == done

    capsys.readouterr()
    assert _rollback(spark, settings, "20990101T000000Z-00000000") == 1  # a future batch
    assert "no table has commits of batch 20990101T000000Z-00000000" in capsys.readouterr().err
    assert _versions(spark, settings) == done
