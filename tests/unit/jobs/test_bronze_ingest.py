from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

import jobs.bronze_ingest as bronze
from lakehouse.pipeline import execute_job
from lakehouse.pipeline.report import ReconciliationError

NOW = datetime(2026, 1, 2, 3, 4, 5)


def test_transform_splits_good_and_malformed(spark):
    cols = ["order_id", "customer_id", "product_id", "quantity", "unit_price", "order_ts"]
    parsed = spark.createDataFrame(
        [
            ("O1", "C1", "P1", "2", "3.50", "2025-01-01 10:00:00", None, "f1.csv"),
            (None, None, None, None, None, None, "O2,C1,P1,1", "f1.csv"),
        ],
        ", ".join(f"{c} string" for c in [*cols, "_corrupt_record", "_source_file"]),
    )
    out = bronze.transform(parsed, entity="orders", fmt="csv", batch_id="b1", ingest_time=NOW)
    expected = spark.createDataFrame(
        [("O1", "C1", "P1", "2", "3.50", "2025-01-01 10:00:00", NOW, "f1.csv", "b1")],
        ", ".join(f"{c} string" for c in cols)
        + ", _ingest_time timestamp, _source_file string, _batch_id string",
    )
    assert_df_equality(out.accepted, expected, ignore_nullable=True)
    q = out.quarantined.select("stage", "source", "reason", "record", "batch_id").collect()
    assert [tuple(r) for r in q] == [
        ("bronze_ingest", "f1.csv", "malformed csv record: expected 6 columns", "O2,C1,P1,1", "b1")
    ]


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_run_reconciles_and_skips_ingested_files(spark, settings):
    landing = settings.landing_path
    from pathlib import Path

    land = Path(landing)
    _write(
        land / "orders" / "orders_a.csv",
        "order_id,customer_id,product_id,quantity,unit_price,order_ts\n"
        "O1,C1,P1,1,2.00,2025-01-01 00:00:00\n"
        "O2,C1,P1,1,2.00\n"  # too few columns
        "\n"
        "O3,C2,P1,1,2.00,2025-01-02 00:00:00,extra\n",  # too many columns
    )
    _write(
        land / "orders" / "orders_b.json",
        '{"order_id":"O4","customer_id":"C1","product_id":"P1","quantity":"1",'
        '"unit_price":"2.00","order_ts":"2025-01-03 00:00:00"}\n'
        '{"order_id":"O5","customer_id":"C1"\n',  # truncated
    )
    _write(
        land / "customers" / "c.json",
        '{"customer_id":"C1","name":"a","email":null,"city":"x","tier":"gold",'
        '"op":"I","updated_at":"2025-01-01 00:00:00"}\n',
    )
    _write(land / "products" / "p.csv", "product_id,name,category,price,updated_at\n")

    result = execute_job(spark, settings, "bronze_ingest", batch_id="b1")
    assert (result.rows_in, result.rows_written, result.rows_quarantined) == (6, 3, 3)
    # each increment's lag: from its oldest file's modification time to its end
    lags = [i["lag_s"] for src in result.details["increments"] for i in src["increments"]]
    assert lags and all(0 < lag < 600 for lag in lags), lags
    assert result.details["reconciliation"]["reconciled"] is True
    orders = spark.read.format("delta").load(settings.table_path("bronze_orders"))
    assert sorted(r.order_id for r in orders.collect()) == ["O1", "O4"]
    assert orders.where(F.col("_batch_id") != "b1").count() == 0
    q = spark.read.format("delta").load(settings.table_path("quarantine_bronze"))
    reasons = sorted(r.reason for r in q.collect())
    assert reasons == [
        "malformed csv record: expected 6 columns",
        "malformed csv record: expected 6 columns",
        "malformed json record",
    ]

    again = execute_job(spark, settings, "bronze_ingest", batch_id="b2")
    assert (again.rows_in, again.rows_written, again.rows_quarantined) == (0, 0, 0)
    assert spark.read.format("delta").load(settings.table_path("bronze_orders")).count() == 2


def test_reconciliation_error_message():
    from lakehouse.pipeline.report import JobResult

    with pytest.raises(ReconciliationError) as info:
        JobResult(job="x").check_reconciled(rows_in=10, accepted=7, quarantined=2)
    assert str(info.value) == (
        "x: input (10) != accepted (7) + quarantined (2); 1 rows unaccounted"
    )
