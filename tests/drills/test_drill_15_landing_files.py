"""Drill 15: hostile landing files, and a landing file rewritten in place.

Pass criteria:

- *Hostile corpus.* One batch holds good CSV and JSON files next to a 0-byte CSV, a gzip
  and a UTF-16 file named ``.csv``, a JSON file with a line of only a tab and a line of
  only a NUL, and a one-line JSON array. ``bronze_ingest`` succeeds; the good files are
  ingested; each bad file is quarantined *as a file* (its path, a reason, its size); and the
  counts reconcile per file and in total (``input = accepted + quarantined``).
- *Rewritten in place.* After a run, a landing file gets 3 more rows (new size and mtime).
  The next run does not ingest it again (bronze keeps its rows once) and does not ignore
  it silently: it is quarantined as "changed after ingestion", logged, and listed in the
  run report; the run after that reports it no more.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Settings
from lakehouse.pipeline import execute_job

HEADER = "order_id,customer_id,product_id,quantity,unit_price,order_ts"
GOOD = "{}".format(
    '{"order_id":"J1","customer_id":"C1","product_id":"P1","quantity":"1",'
    '"unit_price":"2.00","order_ts":"2025-01-01 00:00:00"}'
)


def _csv(*ids: str) -> str:
    return HEADER + "\n" + "".join(f"{i},C1,P1,1,2.00,2025-01-01 00:00:00\n" for i in ids)


def _quarantined_files(spark: SparkSession, settings: Settings) -> dict[str, str]:
    q = spark.read.format("delta").load(settings.table_path("quarantine_bronze"))
    rows = q.where(F.col("record").startswith("whole file not ingested")).collect()
    return {Path(r["source"]).name: r["reason"] for r in rows}


@pytest.mark.slow
def test_hostile_files_are_quarantined_as_files_and_the_rest_proceeds(
    spark: SparkSession, settings: Settings
) -> None:
    orders = Path(settings.landing_path) / "orders"
    orders.mkdir(parents=True)
    (orders / "good.csv").write_text(_csv("O1", "O2"))
    (orders / "good.json").write_text(GOOD + "\n")
    (orders / "empty.csv").write_bytes(b"")
    (orders / "packed.csv").write_bytes(gzip.compress(_csv("Z1").encode()))
    (orders / "wide.csv").write_bytes(_csv("U1").encode("utf-16"))
    (orders / "blanks.json").write_text(GOOD.replace("J1", "J2") + "\n\t\n\x00\n")
    (orders / "array.json").write_text("[" + GOOD.replace("J1", "J3") + "," + GOOD + "]\n")

    result = execute_job(spark, settings, "bronze_ingest", batch_id="d15")
    assert result.status == "ok"
    bronze = spark.read.format("delta").load(settings.table_path("bronze_orders"))
    ingested = sorted(r["order_id"] for r in bronze.collect())
    files = _quarantined_files(spark, settings)
    assert {"empty.csv", "packed.csv", "wide.csv", "array.json"} <= set(files), files
    assert files["empty.csv"] == "empty file (0 bytes)"
    assert files["packed.csv"].startswith("compressed file (gzip)")
    assert files["wide.csv"] == "UTF-16 text: landing files must be UTF-8"
    assert files["array.json"].startswith("records do not reconcile: 1 input lines, 2 records")
    # the good files are in; blanks.json is either ingested (its blank lines skipped by
    # reader and counter alike) or set aside whole, never half
    assert {"O1", "O2", "J1"} <= set(ingested)
    assert ("J2" in ingested) != ("blanks.json" in files)
    rec = result.details["reconciliation"]
    assert rec["reconciled"] and rec["input"] == rec["accepted"] + rec["quarantined"]
    counts = result.details["sources"]
    streamed = sum(c["files_quarantined"] for c in counts.values())
    # an empty file yields no row in Spark's file source: bronze's listing quarantines it
    assert streamed + result.details["files_quarantined_unread"] == len(files)


@pytest.mark.slow
def test_a_file_rewritten_in_place_is_quarantined_and_reported_once(
    spark: SparkSession, settings: Settings
) -> None:
    orders = Path(settings.landing_path) / "orders"
    orders.mkdir(parents=True)
    extra = orders / "orders_extra.csv"
    extra.write_text(_csv("O1", "O2"))
    execute_job(spark, settings, "bronze_ingest", batch_id="d15a")

    extra.write_text(_csv("O1", "O2", "O3", "O4", "O5"))  # 3 more rows, new size and mtime
    second = execute_job(spark, settings, "bronze_ingest", batch_id="d15b")
    changed = second.details["changed_files"]
    assert [Path(c["path"]).name for c in changed] == ["orders_extra.csv"]
    assert changed[0]["reason"].startswith("landing file changed after ingestion (")
    reason = _quarantined_files(spark, settings)["orders_extra.csv"]
    assert reason == changed[0]["reason"]
    bronze = spark.read.format("delta").load(settings.table_path("bronze_orders"))
    assert sorted(r["order_id"] for r in bronze.collect()) == ["O1", "O2"]

    third = execute_job(spark, settings, "bronze_ingest", batch_id="d15c")
    assert "changed_files" not in third.details
