"""Drill 3: re-running every job of the pipeline on the same input changes nothing.

Pass criterion: after a full pipeline run, running the whole pipeline again on the same
landing files (with the same batch id, as after a crash, and with a new batch id, as a
scheduler retry would) leaves every table's content identical row for row, adds no row
anywhere (the quality-results log excepted: it records every run by design); with the same
batch id no table gets a new version (Delta skips every write by its transaction
identity), with a new batch id the bronze tables and the SCD2 dimension get none.
"""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from harness.generator import generate_landing
from lakehouse.config import Settings
from lakehouse.pipeline.runner import run_pipeline
from lakehouse.quality.expectations import RESULTS_TABLE
from lakehouse.spark.delta import is_delta_table, table_version

NO_NEW_VERSION = ("bronze_orders", "bronze_customers", "bronze_products", "dim_customer")


def _snapshot(spark: SparkSession, settings: Settings) -> dict[str, tuple[int | None, list]]:
    out = {}
    for name in sorted(settings.tables):
        if name == RESULTS_TABLE:  # a run log: one row per expectation per run, by design
            continue
        path = settings.table_path(name)
        if not is_delta_table(spark, path):
            continue
        df = spark.read.format("delta").load(path)
        rows = sorted(df.collect(), key=lambda r: tuple(str(v) for v in r))
        out[name] = (table_version(spark, path), rows)
    return out


@pytest.mark.slow
def test_rerunning_the_pipeline_changes_nothing(spark: SparkSession, settings: Settings) -> None:
    generate_landing(settings.landing_path, orders=60, days=7, seed=3, malformed_fraction=0.05)
    run_pipeline(spark, settings, batch_id="drill3-1")
    first = _snapshot(spark, settings)
    assert {"bronze_orders", "orders", "dim_customer", "fact_sales"} <= set(first)

    for batch in ("drill3-1", "drill3-2"):
        report = run_pipeline(spark, settings, batch_id=batch)
        assert report.ok
        again = _snapshot(spark, settings)
        assert sorted(again) == sorted(first)
        for name, (version, rows) in first.items():
            assert again[name][1] == rows, f"{name} changed on re-run with batch {batch}"
            # Same batch id (a crash re-run): every write carries the batch's Delta txn
            # identity, so no table gets a new version at all. A new batch id: the bronze
            # tables and the SCD2 dimension still get none.
            if batch == "drill3-1" or name in NO_NEW_VERSION:
                assert again[name][0] == version, f"{name}: new version on re-run ({batch})"
        moved = {n: (first[n][0], again[n][0]) for n in first if again[n][0] != first[n][0]}
        print(f"drill 3 ({batch}): tables with a new (empty) commit: {moved}")
