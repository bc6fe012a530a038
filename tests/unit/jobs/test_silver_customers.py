from datetime import datetime

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
