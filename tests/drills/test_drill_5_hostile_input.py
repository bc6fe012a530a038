"""Drill 5: a hostile landing corpus.

Pass criterion: a CSV and a JSON orders file containing a byte-order mark, a bad date,
too few and too many columns, a quoted field with an embedded newline, a raw newline
inside a JSON string, truncated JSON, a non-object JSON line, a 70,000-character field
and Latin-1 bytes are ingested by ``bronze_ingest`` without failing; every non-blank
input line is either a bronze row or a quarantine row with a non-empty reason, the
counts reconcile exactly (input = accepted + quarantined, per file), each hostile kind
gets its expected reason, quarantined records are stored truncated, and the bad date is
quarantined by silver with a reason.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import jobs.bronze_ingest as bronze
import jobs.silver_orders as silver_orders
from lakehouse.config import load_config
from lakehouse.pipeline import execute_job

HEADER = "order_id,customer_id,product_id,quantity,unit_price,order_ts"
HUGE = "P" * 70_000
TS = "2025-01-01 10:00:00"

CSV = b"".join(
    [
        ("\ufeff" + HEADER + "\n").encode(),
        f"O1,C1,P1,2,9.99,{TS}\n".encode(),  # good
        b"O2,C1,P1,1,5.00,2025-13-45 99:99:99\n",  # bad date: raw in bronze, silver rejects
        b"O3,C1,P1,1\n",  # too few columns
        f"O4,C1,P1,1,2.00,{TS},extra\n".encode(),  # too many columns
        f'O5,C1,"P1\nx",1,2.00,{TS}\n'.encode(),  # embedded newline: two broken lines
        f"O6,C1,{HUGE},1,2.00,{TS}\n".encode(),  # huge value
        f"O7,C\xe9,P1,1,2.00,{TS}\n".encode("latin-1"),  # wrong encoding
    ]
)


def _j(order_id: str, product: str = "P1", ts: str = TS) -> str:
    return (
        f'{{"order_id":"{order_id}","customer_id":"C1","product_id":"{product}",'
        f'"quantity":"1","unit_price":"2.00","order_ts":"{ts}"}}'
    )


JSON = b"".join(
    [
        ("\ufeff" + _j("J1") + "\n").encode(),  # BOM + good
        _j("J2")[:40].encode() + b"\n",  # truncated
        (_j("J3", product=HUGE) + "\n").encode(),  # huge value
        (_j("J4", product="caf\xe9") + "\n").encode("latin-1"),  # wrong encoding
        (_j("J5", product="P\n1") + "\n").encode(),  # raw newline inside a string
        b"42\n",  # not an object
        (_j("J7", ts="not a date") + "\n").encode(),  # bad date
    ]
)

EXPECTED_ACCEPTED = {"O1", "O2", "J1", "J7"}
EXPECTED_REASONS = {
    "malformed csv record: expected 6 columns": 4,  # O3, O4, O5 (two lines)
    "field longer than 65536 characters": 2,  # O6, J3
    "invalid text encoding: bytes that are not UTF-8": 2,  # O7, J4
    "malformed json record": 4,  # J2, J5 (two lines), 42
}


@pytest.mark.slow
def test_hostile_corpus_is_accepted_or_quarantined_and_reconciles(
    spark: SparkSession, tmp_path: Path
) -> None:
    settings = load_config(
        "local",
        overrides={
            "paths": {"data_root": str(tmp_path / "data")},
            "jobs": {
                "bronze_ingest": {
                    "sources": [
                        {
                            "entity": "orders",
                            "format": "csv",
                            "glob": "orders/*.csv",
                            "table": "bronze_orders",
                        },
                        {
                            "entity": "orders",
                            "format": "json",
                            "glob": "orders/*.json",
                            "table": "bronze_orders",
                        },
                    ]
                }
            },
        },
    )
    landing = Path(settings.landing_path) / "orders"
    landing.mkdir(parents=True)
    (landing / "hostile.csv").write_bytes(CSV)
    (landing / "hostile.json").write_bytes(JSON)
    lines = sum(1 for blob in (CSV, JSON) for ln in blob.split(b"\n") if ln.strip()) - 1  # header

    result = execute_job(spark, settings, "bronze_ingest", batch_id="d5")

    rec = result.details["reconciliation"]
    assert rec == {"input": lines, "accepted": 4, "quarantined": 12, "reconciled": True}
    per_source = result.details["sources"]
    assert sum(v["input"] for v in per_source.values()) == lines

    accepted = spark.read.format("delta").load(settings.table_path("bronze_orders"))
    assert {r["order_id"] for r in accepted.collect()} == EXPECTED_ACCEPTED
    q = spark.read.format("delta").load(settings.table_path("quarantine_bronze"))
    got = {r["reason"]: r["n"] for r in q.groupBy("reason").agg(F.count("*").alias("n")).collect()}
    assert got == EXPECTED_REASONS
    assert q.where(F.length("record") > bronze.MAX_RECORD_CHARS + 64).count() == 0

    # silver: the bad dates are quarantined with a reason, not silently dropped
    split = silver_orders.transform(
        accepted, min_date=dt.date(2000, 1, 1), max_date=dt.date(2100, 1, 1), batch_id="d5"
    )
    assert {r["order_id"] for r in split.accepted.collect()} == {"O1", "J1"}
    assert split.rejected.where(F.col("reason").isNull() | (F.col("reason") == "")).count() == 0
    assert split.rejected.count() == 2

    # re-run: every file is remembered, nothing is read or written twice
    again = execute_job(spark, settings, "bronze_ingest", batch_id="d5-again")
    assert again.rows_in == 0
    assert spark.read.format("delta").load(settings.table_path("bronze_orders")).count() == 4
