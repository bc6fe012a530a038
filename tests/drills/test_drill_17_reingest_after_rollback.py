"""Drill 17: a rolled-back batch's landing files are ingested again by the next run.

The probe (issue 29, item 6) rolled back a batch, and the next ingest skipped its files:
their good rows never reached bronze. Rolling back restores the tables, but the file
streams' checkpoints still counted the files as handed out, and the Delta streams
downstream stopped on the rollback's ``RESTORE`` commits.

Pass criteria, on a data root where batch B1 loaded the history and B2 one new day
through bronze, silver and gold:

* ``lakehouse rollback --batch-id B2`` exits 0, every table is back at its B1 content, and
  it names the file stream checkpoints it reset;
* the next run (B3) ingests B2's two landing files again, and only them, and every
  table (bronze, quarantines, landing ledger, silver, gold) then equals its state right
  after B2, run columns (batch ids, ingestion times) aside;
* the run after that is a no-op: no file is ingested twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from harness.generator import generate_increment, generate_landing
from lakehouse.cli.rollback import main as rollback
from lakehouse.config import Settings
from lakehouse.pipeline import run_pipeline

JOBS = ("bronze_ingest", "silver_customers", "silver_orders", "gold_daily_sales")
TABLES = (
    "bronze_orders",
    "bronze_customers",
    "bronze_products",
    "quarantine_bronze",
    "landing_ledger",
    "orders",
    "products",
    "dim_customer",
    "quarantine_silver_orders",
    "quarantine_silver_customers",
    "fact_sales",
    "daily_revenue",
)
#: Columns that differ between two runs over the same files by design.
RUN_COLUMNS = ("_ingest_time", "_batch_id", "batch_id", "quarantined_at")


def _version(spark: SparkSession, settings: Settings, table: str) -> int:
    history = DeltaTable.forPath(spark, settings.table_path(table)).history(1)
    return int(history.first()["version"])


def _as_of(spark: SparkSession, settings: Settings, table: str, version: int) -> DataFrame:
    df = spark.read.format("delta").option("versionAsOf", version)
    return df.load(settings.table_path(table)).drop(*RUN_COLUMNS)


def _now(spark: SparkSession, settings: Settings, table: str) -> DataFrame:
    return spark.read.format("delta").load(settings.table_path(table)).drop(*RUN_COLUMNS)


def _same(got: DataFrame, want: DataFrame) -> None:
    assert_df_equality(
        got, want, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True
    )


@pytest.mark.slow
def test_a_rolled_back_batch_is_ingested_again(
    spark: SparkSession, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    generate_landing(settings.landing_path, orders=200, days=5, seed=17, malformed_fraction=0.03)
    assert run_pipeline(spark, settings, jobs=JOBS, batch_id="B1").ok
    after_b1 = {t: _version(spark, settings, t) for t in TABLES}

    written = generate_increment(
        settings.landing_path, index=0, orders=12, customer_updates=4, seed=17, days=5
    )
    b2 = run_pipeline(spark, settings, jobs=JOBS, batch_id="B2")
    assert b2.ok
    after_b2 = {t: _version(spark, settings, t) for t in TABLES}
    assert all(after_b2[t] > after_b1[t] for t in ("bronze_orders", "orders", "fact_sales"))

    capsys.readouterr()
    assert rollback(["--batch-id", "B2"], spark=spark, settings=settings) == 0
    out = capsys.readouterr().out
    assert "reset file stream checkpoint" in out and "bronze_ingest/orders_csv" in out, out
    for table in TABLES:  # every table holds what B1 left
        _same(_now(spark, settings, table), _as_of(spark, settings, table, after_b1[table]))

    b3 = run_pipeline(spark, settings, jobs=JOBS, batch_id="B3")
    assert b3.ok
    bronze = {j.job: j for j in b3.jobs}["bronze_ingest"]
    ingested = {Path(f).name for f in _files_of_batch(spark, settings, "B3")}
    assert ingested == {Path(str(written[k])).name for k in ("orders_file", "customers_file")}
    assert bronze.rows_in == {j.job: j for j in b2.jobs}["bronze_ingest"].rows_in
    for table in TABLES:  # as if B2 had never been undone
        _same(_now(spark, settings, table), _as_of(spark, settings, table, after_b2[table]))

    before = {t: _version(spark, settings, t) for t in TABLES}
    b4 = run_pipeline(spark, settings, jobs=JOBS, batch_id="B4")
    assert b4.ok and all(j.details.get("noop") is True for j in b4.jobs)
    assert {t: _version(spark, settings, t) for t in TABLES} == before


def _files_of_batch(spark: SparkSession, settings: Settings, batch: str) -> list[str]:
    ledger = spark.read.format("delta").load(settings.table_path("landing_ledger"))
    return [r["path"] for r in ledger.where(ledger.batch_id == batch).collect()]
