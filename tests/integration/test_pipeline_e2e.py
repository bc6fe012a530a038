"""The whole pipeline on tiny generated data: every layer filled, counts reconciled, re-run is a no-op."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from harness.generator import generate_landing
from lakehouse.pipeline import JobFailedError, run_pipeline
from lakehouse.spark.delta import is_delta_table

PIPELINE = ("bronze_ingest", "silver_customers", "silver_orders", "gold_daily_sales", "maintain")


def _read(spark, settings, table):
    """The table, or no rows when it was never written (a quarantine with nothing in it)."""
    path = settings.table_path(table)
    if not is_delta_table(spark, path):
        return spark.createDataFrame([], "stage string")
    return spark.read.format("delta").load(path)


def _count(spark, settings, table):
    return _read(spark, settings, table).count()


@pytest.mark.slow
def test_pipeline_end_to_end_reconciles(spark, settings, tmp_path):
    stats = generate_landing(
        settings.landing_path, orders=300, days=7, seed=5, malformed_fraction=0.02
    )
    report = run_pipeline(spark, settings, batch_id="e2e-1")
    assert [j.job for j in report.jobs] == list(PIPELINE)
    assert report.ok
    by_job = {j.job: j for j in report.jobs}

    # bronze: every landing record is in bronze or in quarantine
    bronze = by_job["bronze_ingest"]
    landing_records = stats["orders"] + stats["customer_events"] + stats["products"]
    assert bronze.rows_in == landing_records
    bronze_rows = sum(
        _count(spark, settings, t) for t in ("bronze_orders", "bronze_customers", "bronze_products")
    )
    q_bronze = _count(spark, settings, "quarantine_bronze")
    assert bronze_rows + q_bronze == landing_records
    assert q_bronze > 0

    # silver orders: bronze orders = silver orders + quarantined orders
    orders_q = (
        _read(spark, settings, "quarantine_silver_orders")
        .where(F.col("stage") == "silver_orders")
        .count()
    )
    assert _count(spark, settings, "orders") + orders_q == _count(spark, settings, "bronze_orders")
    assert _count(spark, settings, "orders") > 0

    # silver customers: SCD2 invariants, one current row per live customer
    dim = spark.read.format("delta").load(settings.table_path("dim_customer"))
    assert dim.count() > 0
    assert (
        dim.groupBy("customer_id")
        .agg(F.sum(F.col("is_current").cast("int")).alias("n"))
        .where("n > 1")
        .count()
        == 0
    )
    assert dim.where(F.col("is_current") != F.col("valid_to").isNull()).count() == 0
    # ... and the same invariants are Delta constraints: an outside writer cannot break them
    added = by_job["silver_customers"].details["constraints"]
    assert any("valid_interval" in a for a in added), added
    bad = dim.limit(1).withColumn("valid_to", F.col("valid_from"))  # zero-width interval
    with pytest.raises(Exception, match=r"(?i)valid_interval|current_iff_open"):
        bad.write.format("delta").mode("append").save(settings.table_path("dim_customer"))

    # gold: one fact row per silver order; daily revenue adds up
    assert _count(spark, settings, "fact_sales") == _count(spark, settings, "orders")
    fact_rev = (
        spark.read.format("delta")
        .load(settings.table_path("fact_sales"))
        .agg(F.sum("amount"))
        .first()[0]
    )
    daily_rev = (
        spark.read.format("delta")
        .load(settings.table_path("daily_revenue"))
        .agg(F.sum("revenue"))
        .first()[0]
    )
    assert fact_rev == daily_rev

    # every job that moves rows reconciles them; maintain moves none
    reconciling = {j.job for j in report.jobs if "reconciliation" in j.details}
    assert reconciling == set(PIPELINE) - {"maintain"}
    for name in reconciling:
        rec = by_job[name].details["reconciliation"]
        assert rec["reconciled"] is True, name
        assert rec["input"] == rec["accepted"] + rec["quarantined"], name

    path = report.write(settings.reports_path)
    saved = json.loads(Path(path).read_text())
    assert [j["job"] for j in saved["jobs"]] == list(PIPELINE)
    assert "reconciliation ok" in report.render()

    # re-run on the same input: nothing new anywhere, no new SCD2 version
    # the version after the whole first run (maintain may OPTIMIZE/VACUUM dim_customer)
    dim_version = by_job["maintain"].tables["dim_customer"]
    counts = {
        t: _count(spark, settings, t)
        for t in ("bronze_orders", "orders", "dim_customer", "quarantine_silver_orders")
    }
    again = run_pipeline(spark, settings, batch_id="e2e-2")
    again_by = {j.job: j for j in again.jobs}
    assert again_by["bronze_ingest"].rows_in == 0
    assert again_by["silver_customers"].tables["dim_customer"] == dim_version
    assert {t: _count(spark, settings, t) for t in counts} == counts


def test_failing_job_is_named(spark, settings):
    # bronze_orders without the feed's columns: silver_orders cannot type its rows
    spark.createDataFrame([("a",)], "x string").write.format("delta").save(
        settings.table_path("bronze_orders")
    )
    with pytest.raises(JobFailedError) as info:
        run_pipeline(spark, settings, jobs=("silver_orders",), batch_id="x")
    assert info.value.job == "silver_orders"
    assert info.value.report.jobs[-1].status == "failed"
    assert "silver_orders" in str(info.value)
