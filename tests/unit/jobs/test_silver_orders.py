from datetime import date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

import jobs.silver_orders as silver

RAW = (
    "order_id string, customer_id string, product_id string, quantity string, "
    "unit_price string, order_ts string, _ingest_time timestamp, _source_file string, "
    "_batch_id string"
)
PRODUCTS_RAW = (
    "product_id string, name string, category string, price string, updated_at string, "
    "_ingest_time timestamp, _source_file string, _batch_id string"
)
T0 = datetime(2026, 1, 1)
T1 = datetime(2026, 1, 2)


def _row(oid, cid="C1", pid="P1", qty="2", price="1.50", ts="2025-03-04 05:06:07", t=T0, f="a"):
    return (oid, cid, pid, qty, price, ts, t, f, "b")


def test_orders_typed_validated_deduplicated(spark):
    bronze = spark.createDataFrame(
        [
            _row("O1"),
            _row("O1", t=T1, f="b"),  # second delivery of O1
            _row("O2", cid=" "),  # blank key
            _row("O3", qty="-1"),
            _row("O4", qty="x"),
            _row("O5", ts="2025-13-45 10:00:00"),
            _row("O6", ts="1999-12-31 23:00:00"),
            _row("O7", price="-3"),
            _row(None),
            _row("O8", qty="3", price="2.00", ts="2025-03-05 00:00:00"),
        ],
        RAW,
    )
    out = silver.transform(
        bronze, min_date=date(2000, 1, 1), max_date=date(2100, 1, 1), batch_id="b9"
    )
    expected = spark.createDataFrame(
        [
            (
                "O1",
                "C1",
                "P1",
                2,
                Decimal("1.50"),
                Decimal("3.00"),
                datetime(2025, 3, 4, 5, 6, 7),
                date(2025, 3, 4),
            ),
            (
                "O8",
                "C1",
                "P1",
                3,
                Decimal("2.00"),
                Decimal("6.00"),
                datetime(2025, 3, 5),
                date(2025, 3, 5),
            ),
        ],
        "order_id string, customer_id string, product_id string, quantity int, "
        "unit_price decimal(12,2), amount decimal(14,2), order_ts timestamp, order_date date",
    )
    assert_df_equality(out.accepted, expected, ignore_row_order=True, ignore_nullable=True)
    got = sorted((r.reason, r.source) for r in out.rejected.select("reason", "source").collect())
    assert got == sorted(
        [
            ("duplicate order_id", "b"),
            ("null key: customer_id", "a"),
            ("quantity must be positive", "a"),
            ("quantity is not an integer", "a"),
            ("unparseable order_ts", "a"),
            ("order_date out of range", "a"),
            ("invalid unit_price", "a"),
            ("null key: order_id", "a"),
        ]
    )
    assert out.rejected.select("batch_id").distinct().collect()[0][0] == "b9"
    # nothing lost: every input row is accepted or rejected
    assert out.accepted.count() + out.rejected.count() == bronze.count()


def test_products_latest_row_wins(spark):
    bronze = spark.createDataFrame(
        [
            ("P1", "old", "books", "1.00", "2025-01-01 00:00:00", T0, "f", "b"),
            ("P1", "new", "books", "2.00", "2025-02-01 00:00:00", T0, "f", "b"),
            ("P2", "bad", "toys", "abc", "2025-01-01 00:00:00", T0, "f", "b"),
        ],
        "product_id string, name string, category string, price string, updated_at string, "
        "_ingest_time timestamp, _source_file string, _batch_id string",
    )
    out = silver.transform_products(bronze, batch_id="b")
    expected = spark.createDataFrame(
        [("P1", "new", "books", Decimal("2.00"), datetime(2025, 2, 1), "f")],
        "product_id string, name string, category string, price decimal(12,2), "
        "updated_at timestamp, _source string",
    )
    assert_df_equality(out.accepted, expected, ignore_nullable=True)
    assert sorted(r.reason for r in out.rejected.collect()) == [
        "invalid price",
        "superseded product row",
    ]
    # P2's row was rejected: the snapshot does not delete it
    assert [r.product_id for r in out.protected.collect()] == ["P2"]


def test_the_latest_catalogue_file_of_an_increment_is_the_snapshot(spark):
    bronze = spark.createDataFrame(
        [
            ("P1", "a", "books", "1.00", "2025-01-01 00:00:00", T0, "old.csv", "b"),
            ("P2", "b", "toys", "1.00", "2025-01-01 00:00:00", T0, "old.csv", "b"),
            ("P1", "a", "books", "3.00", "2025-03-01 00:00:00", T1, "new.csv", "b"),
        ],
        PRODUCTS_RAW,
    )
    out = silver.transform_products(bronze, batch_id="b")
    assert [(r.product_id, r.price) for r in out.accepted.collect()] == [("P1", Decimal("3.00"))]
    assert sorted(r.reason for r in out.rejected.collect()) == [
        "superseded catalogue snapshot",
        "superseded catalogue snapshot",
    ]


@pytest.mark.slow  # a long scenario: in the full gate, not the fast loop
def test_catalogue_snapshots_make_products_an_scd2_dimension(spark, settings):
    from lakehouse.pipeline import execute_job

    def land(rows, at):
        bronze = settings.table_path("bronze_products")
        data = [(*r, at, f"p{at.day}.csv", "b") for r in rows]
        spark.createDataFrame(data, PRODUCTS_RAW).write.format("delta").mode("append").save(bronze)

    land([("P1", "a", "books", "1.00", "2025-01-01 00:00:00"),
          ("P2", "b", "toys", "2.00", "2025-01-01 00:00:00"),
          ("P3", "c", "toys", "3.00", "2025-01-01 00:00:00")], T0)  # fmt: skip
    assert execute_job(spark, settings, "silver_orders", batch_id="s0").status == "ok"
    # P1 changes category, P2 is discontinued, P3's row is broken (it keeps its version)
    land([("P1", "a", "games", "1.00", "2025-02-01 00:00:00"),
          ("P3", "c", "toys", "oops", "2025-02-01 00:00:00")], T1)  # fmt: skip
    result = execute_job(spark, settings, "silver_orders", batch_id="s1")
    assert result.details["products"] == {"input": 2, "accepted": 1, "quarantined": 1}
    got = spark.read.format("delta").load(settings.table_path("products"))
    rows = {
        (r.product_id, r.category, r.valid_from.month, r.valid_to and r.valid_to.month)
        for r in got.collect()
    }
    assert rows == {
        ("P1", "books", 1, 2),
        ("P1", "games", 2, None),
        ("P2", "toys", 1, 2),
        ("P3", "toys", 1, None),
    }
    # an older snapshot arriving later is quarantined whole, the table is unchanged
    land([("P1", "a", "music", "1.00", "2025-01-15 00:00:00")], datetime(2026, 1, 3))
    stale = execute_job(spark, settings, "silver_orders", batch_id="s2")
    assert stale.details["products"] == {"input": 1, "accepted": 0, "quarantined": 1}
    assert spark.read.format("delta").load(settings.table_path("products")).count() == 4
    # tables.products.quality: the SCD2 invariants are CHECK constraints on products
    bad = got.limit(1).withColumn("is_current", F.lit(False)).withColumn("valid_to", F.lit(None))
    with pytest.raises(Exception, match=r"(?i)current_iff_open"):
        bad.write.format("delta").mode("append").save(settings.table_path("products"))


def test_orders_loaded_by_an_earlier_increment_are_duplicates(spark):
    bronze = spark.createDataFrame(
        [_row("O1"), _row("O1", t=T1, f="b"), _row("O2"), _row("O3", qty="0")], RAW
    )
    known = spark.createDataFrame([("O1",), ("O9",)], "order_id string")
    out = silver.transform(
        bronze, min_date=date(2000, 1, 1), max_date=date(2100, 1, 1), batch_id="b",
        known_ids=known,
    )  # fmt: skip
    assert [r.order_id for r in out.accepted.collect()] == ["O2"]
    reasons = sorted(r.reason for r in out.rejected.collect())
    # both deliveries of O1 (already in orders) are duplicates, each counted once
    assert reasons == ["duplicate order_id", "duplicate order_id", "quantity must be positive"]


def test_the_loaded_ids_of_an_increment_are_only_its_own_ids_the_table_holds(spark, tmp_path):
    """The orders table is matched against the increment's ids (trimmed, as the transform
    types them) once; ids of the table the increment lacks are not carried along."""
    target = str(tmp_path / "orders")
    assert silver._loaded_ids(spark, target, spark.createDataFrame([], RAW)) is None  # no table
    spark.createDataFrame([("O1",), ("O5",), ("O9",)], "order_id string").write.format(
        "delta"
    ).save(target)
    bronze = spark.createDataFrame([_row(" O1 "), _row("O1", f="b"), _row("O2"), _row(" ")], RAW)
    loaded = silver._loaded_ids(spark, target, bronze)
    assert loaded is not None and loaded.is_cached
    try:
        assert [r.order_id for r in loaded.collect()] == ["O1"]
    finally:
        loaded.unpersist()
