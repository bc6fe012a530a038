from datetime import datetime

import pytest
from chispa import assert_df_equality

import jobs.silver_customers as silver

RAW = (
    "customer_id string, name string, email string, city string, tier string, op string, "
    "updated_at string, _ingest_time timestamp, _source_file string, _batch_id string"
)
T = datetime(2026, 1, 1)


def test_transform_types_and_rejects(spark):
    bronze = spark.createDataFrame(
        [
            ("C1", "Ada", "a@x", "Oslo", "gold", "i", "2025-01-01 00:00:00", T, "f1", "b"),
            (" C2 ", "Bo", None, "Lima", "silver", "D", "2025-01-02 00:00:00", T, "f1", "b"),
            (None, "Nil", None, "Pune", "gold", "I", "2025-01-01 00:00:00", T, "f2", "b"),
            ("C3", "Cy", None, "Pune", "gold", "U", "yesterday", T, "f2", "b"),
            ("C4", "Di", None, "Pune", "gold", "X", "2025-01-01 00:00:00", T, "f2", "b"),
        ],
        RAW,
    )
    out = silver.transform(bronze, batch_id="b7")
    expected = spark.createDataFrame(
        [
            ("C1", "Ada", "a@x", "Oslo", "gold", "I", datetime(2025, 1, 1)),
            ("C2", "Bo", None, "Lima", "silver", "D", datetime(2025, 1, 2)),
        ],
        "customer_id string, name string, email string, city string, tier string, op string, "
        "updated_at timestamp",
    )
    assert_df_equality(out.changes, expected, ignore_row_order=True, ignore_nullable=True)
    got = sorted((r.reason, r.source) for r in out.rejected.collect())
    assert got == [
        ("null key: customer_id", "f2"),
        ("unknown op", "f2"),
        ("unparseable updated_at", "f2"),
    ]


@pytest.mark.slow  # three job runs: in the full gate, with the silver_orders increment scenario
def test_each_run_applies_only_its_increment_late_events_included(spark, settings):
    from lakehouse.pipeline import execute_job

    bronze = settings.table_path("bronze_customers")

    def land(rows, batch):
        data = [(*r, T, f"{batch}.json", batch) for r in rows]
        spark.createDataFrame(data, RAW).write.format("delta").mode("append").save(bronze)

    def versions():
        dim = spark.read.format("delta").load(settings.table_path("dim_customer"))
        return sorted(
            (r.customer_id, r.city, r.valid_from.day, r.valid_to and r.valid_to.day)
            for r in dim.collect()
        )

    land([("C1", "Ada", None, "Oslo", "gold", "I", "2025-01-01 00:00:00"),
          ("C2", "Bo", None, "Lima", "gold", "I", "2025-01-02 00:00:00")], "b1")  # fmt: skip
    first = execute_job(spark, settings, "silver_customers", batch_id="r1")
    assert (first.rows_in, first.rows_quarantined) == (2, 0)
    # the next increment: a move on the 5th, a late one on the 3rd, a row without a key
    land([("C1", "Ada", None, "Rome", "gold", "U", "2025-01-05 00:00:00"),
          ("C1", "Ada", None, "Bern", "gold", "U", "2025-01-03 00:00:00"),
          (None, "Nil", None, "Pune", "gold", "U", "2025-01-04 00:00:00")], "b2")  # fmt: skip
    second = execute_job(spark, settings, "silver_customers", batch_id="r2")
    assert (second.rows_in, second.rows_quarantined) == (3, 1)  # not the first increment's
    assert versions() == [
        ("C1", "Bern", 3, 5),
        ("C1", "Oslo", 1, 3),
        ("C1", "Rome", 5, None),
        ("C2", "Lima", 2, None),
    ]
    idle = execute_job(spark, settings, "silver_customers", batch_id="r3")
    assert idle.rows_in == 0 and idle.details["noop"] is True
