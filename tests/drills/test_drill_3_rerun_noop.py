"""Drill 3: re-running every job of the pipeline on the same input changes nothing.

Pass criterion: after a full pipeline run, running the whole pipeline again on the same
landing files (with the same batch id, as after a crash, and with a new batch id, as a
scheduler retry would) leaves every table's content identical row for row and gives no
table a new Delta version: every job reads only what is new since its checkpoints, finds
nothing, and writes nothing (no OPTIMIZE either).
"""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from harness.generator import generate_landing
from lakehouse.config import Settings
from lakehouse.pipeline.runner import run_pipeline
from lakehouse.spark.delta import is_delta_table, table_version


def _snapshot(spark: SparkSession, settings: Settings) -> dict[str, tuple[int | None, list]]:
    out = {}
    for name in sorted(settings.tables):
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
            assert again[name][0] == version, f"{name}: new version on re-run ({batch})"
        assert all(j.details.get("noop", True) for j in report.jobs)
