"""Drill 4: schema drift in landing data.

Pass criterion: a landing CSV with an extra column, one with a missing column, and a JSON
feed with an extra key are each rejected by ``bronze_ingest`` with a
``SchemaDriftError`` naming the file (or glob), the table and the extra / missing
columns, and nothing is written; the failed increment is replayed with the same files on
the next run, so with ``schema_evolution: true`` on the source the same files are
ingested (extra column added to the bronze table, missing one NULL). A changed
*type* cannot reach bronze (every bronze column is a raw string): it surfaces in silver,
where each affected row is quarantined with the parse failure as its reason.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

import jobs.silver_orders as silver_orders
from lakehouse.config import load_config
from lakehouse.pipeline import execute_job
from lakehouse.quality.expectations import SchemaDriftError
from lakehouse.spark.delta import is_delta_table

HEADER = "order_id,customer_id,product_id,quantity,unit_price,order_ts"


def _settings(tmp_path: Path, fmt: str, *, evolution: bool):
    source = {
        "entity": "orders",
        "format": fmt,
        "glob": f"orders/*.{fmt}",
        "table": "bronze_orders",
    }
    source["schema_evolution"] = evolution
    return load_config(
        "local",
        overrides={
            "paths": {"data_root": str(tmp_path / "data")},
            "jobs": {"bronze_ingest": {"sources": [source]}},
        },
    )


def _write(settings, name: str, text: str) -> str:
    path = Path(settings.landing_path) / "orders" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return "file:" + str(path)


@pytest.mark.slow
def test_csv_drift_is_rejected_then_accepted_with_evolution(
    spark: SparkSession, tmp_path: Path
) -> None:
    s = _settings(tmp_path, "csv", evolution=False)
    f = _write(s, "extra.csv", HEADER + ",coupon\nO1,C1,P1,1,2.00,2025-01-01 00:00:00,SAVE10\n")
    with pytest.raises(SchemaDriftError) as info:
        execute_job(spark, s, "bronze_ingest", batch_id="d4")
    assert str(info.value) == (
        f"{f}: schema drift rejected for bronze_orders: extra columns ['coupon']. "
        "Set schema_evolution: true on this source to accept it."
    )
    assert not is_delta_table(spark, s.table_path("bronze_orders"))

    # the increment that failed is replayed with the same files: with schema_evolution on
    # the source, the drifted file is ingested (extra column added to the bronze table)
    ev = _settings(tmp_path, "csv", evolution=True)
    assert execute_job(spark, ev, "bronze_ingest", batch_id="d4b").rows_written == 1

    g = _write(
        s,
        "missing.csv",
        "order_id,customer_id,product_id,quantity,order_ts\nO2,C1,P1,1,2025-01-01 00:00:00\n",
    )
    with pytest.raises(SchemaDriftError) as info:
        execute_job(spark, s, "bronze_ingest", batch_id="d4c")
    assert str(info.value) == (
        f"{g}: schema drift rejected for bronze_orders: missing columns ['unit_price']. "
        "Set schema_evolution: true on this source to accept it."
    )
    assert execute_job(spark, ev, "bronze_ingest", batch_id="d4d").rows_written == 1
    rows = {
        r["order_id"]: (r["unit_price"], r["coupon"])
        for r in spark.read.format("delta").load(ev.table_path("bronze_orders")).collect()
    }
    assert rows == {"O1": ("2.00", "SAVE10"), "O2": (None, None)}


@pytest.mark.slow
def test_json_extra_key_is_rejected(spark: SparkSession, tmp_path: Path) -> None:
    s = _settings(tmp_path, "json", evolution=False)
    _write(
        s, "o.json",
        '{"order_id":"J1","customer_id":"C1","product_id":"P1","quantity":"1","unit_price":"2.00",'
        '"order_ts":"2025-01-01 00:00:00","channel":"app"}\n',
    )  # fmt: skip
    with pytest.raises(SchemaDriftError) as info:
        execute_job(spark, s, "bronze_ingest", batch_id="d4")
    assert str(info.value) == (
        "orders/*.json (1 files): schema drift rejected for bronze_orders: extra columns "
        "['channel']. Set schema_evolution: true on this source to accept it."
    )
    assert not is_delta_table(spark, s.table_path("bronze_orders"))


def test_changed_type_is_quarantined_in_silver(spark: SparkSession) -> None:
    cols = ["order_id", "customer_id", "product_id", "quantity", "unit_price", "order_ts",
            "_ingest_time", "_source_file", "_batch_id"]  # fmt: skip
    now = dt.datetime(2026, 1, 1)
    bronze_rows = spark.createDataFrame(
        [
            ("O1", "C1", "P1", "1", "2.00", "2025-01-01 00:00:00", now, "f", "b"),
            ("O2", "C1", "P1", "1", "2.00", "1735689600", now, "f", "b"),  # epoch seconds now
            ("O3", "C1", "P1", "one", "2.00", "2025-01-01 00:00:00", now, "f", "b"),
        ],
        cols,
    )
    split = silver_orders.transform(
        bronze_rows, min_date=dt.date(2000, 1, 1), max_date=dt.date(2100, 1, 1), batch_id="b"
    )
    assert [r["order_id"] for r in split.accepted.collect()] == ["O1"]
    reasons = sorted(r["reason"] for r in split.rejected.collect())
    assert len(reasons) == 2
    assert all(reasons), reasons
