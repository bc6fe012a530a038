from datetime import date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality

import jobs.gold_daily_sales as gold
from lakehouse.pipeline import execute_job
from lakehouse.scd2 import apply_scd2
from lakehouse.spark.delta import table_version


def test_fact_uses_the_customer_version_in_effect_and_keeps_orphans(spark):
    orders = spark.createDataFrame(
        [
            (
                "O1",
                "C1",
                "P1",
                2,
                Decimal("1.50"),
                Decimal("3.00"),
                datetime(2025, 1, 1, 9),
                date(2025, 1, 1),
            ),
            (
                "O2",
                "C2",
                "P1",
                1,
                Decimal("1.50"),
                Decimal("1.50"),
                datetime(2025, 1, 1, 10),
                date(2025, 1, 1),
            ),
            (
                "O3",
                "C1",
                "P2",
                1,
                Decimal("4.00"),
                Decimal("4.00"),
                datetime(2025, 1, 2, 8),
                date(2025, 1, 2),
            ),
            (  # before C1 moved to Lima: the Oslo version was in effect
                "O4",
                "C1",
                "P2",
                1,
                Decimal("4.00"),
                Decimal("4.00"),
                datetime(2024, 3, 1, 8),
                date(2024, 3, 1),
            ),
        ],
        "order_id string, customer_id string, product_id string, quantity int, "
        "unit_price decimal(12,2), amount decimal(14,2), order_ts timestamp, order_date date",
    )
    customers = spark.createDataFrame(
        [
            ("C1", "Oslo", "gold", datetime(2024, 1, 1), datetime(2024, 6, 1), False),
            ("C1", "Lima", "platinum", datetime(2024, 6, 1), None, True),
            # C2 was deleted: its only version is closed, so it has no current row
            ("C2", "Pune", "bronze", datetime(2024, 1, 1), datetime(2024, 2, 1), False),
        ],
        "customer_id string, city string, tier string, valid_from timestamp, "
        "valid_to timestamp, is_current boolean",
    )
    products = spark.createDataFrame(
        [
            ("P1", "books", datetime(2023, 1, 1), None),
            # P2 was a game until June 2024: O4 (March) has that version
            ("P2", "games", datetime(2023, 1, 1), datetime(2024, 6, 1)),
            ("P2", "toys", datetime(2024, 6, 1), None),
        ],
        "product_id string, category string, valid_from timestamp, valid_to timestamp",
    )
    out = gold.transform(orders, customers, products)
    sk = {
        key: spark.sql(f"SELECT xxhash64('C1', TIMESTAMP'{key} 00:00:00')").first()[0]
        for key in ("2024-01-01", "2024-06-01")
    }
    expected_fact = spark.createDataFrame(
        [
            (
                "O1",
                date(2025, 1, 1),
                datetime(2025, 1, 1, 9),
                "C1",
                sk["2024-06-01"],
                "Lima",
                "platinum",
                "P1",
                "books",
                2,
                Decimal("1.50"),
                Decimal("3.00"),
            ),
            (
                "O2",
                date(2025, 1, 1),
                datetime(2025, 1, 1, 10),
                "C2",
                None,
                None,
                None,
                "P1",
                "books",
                1,
                Decimal("1.50"),
                Decimal("1.50"),
            ),
            (
                "O3",
                date(2025, 1, 2),
                datetime(2025, 1, 2, 8),
                "C1",
                sk["2024-06-01"],
                "Lima",
                "platinum",
                "P2",
                "toys",
                1,
                Decimal("4.00"),
                Decimal("4.00"),
            ),
            (
                "O4",
                date(2024, 3, 1),
                datetime(2024, 3, 1, 8),
                "C1",
                sk["2024-01-01"],
                "Oslo",
                "gold",
                "P2",
                "games",
                1,
                Decimal("4.00"),
                Decimal("4.00"),
            ),
        ],
        "order_id string, order_date date, order_ts timestamp, customer_id string, "
        "customer_sk long, customer_city string, customer_tier string, product_id string, product_category string, "
        "quantity int, unit_price decimal(12,2), amount decimal(14,2)",
    )
    assert_df_equality(out.fact, expected_fact, ignore_row_order=True, ignore_nullable=True)
    expected_daily = spark.createDataFrame(
        [
            (date(2025, 1, 1), 2, 3, Decimal("4.50"), 2),
            (date(2025, 1, 2), 1, 1, Decimal("4.00"), 1),
            (date(2024, 3, 1), 1, 1, Decimal("4.00"), 1),
        ],
        "order_date date, orders long, units long, revenue decimal(18,2), customers long",
    )
    assert_df_equality(out.daily, expected_daily, ignore_row_order=True, ignore_nullable=True)


ORDERS = (
    "order_id string, customer_id string, product_id string, quantity int, "
    "unit_price decimal(12,2), amount decimal(14,2), order_ts timestamp, order_date date"
)
EVENTS = "customer_id string, name string, email string, city string, tier string, op string, updated_at timestamp"


def _orders(spark, settings, rows):
    """Append orders ``(id, timestamp)`` of customer C1 to silver ``orders``."""
    data = [(o, "C1", "P1", 1, Decimal("2.00"), Decimal("2.00"), ts, ts.date()) for o, ts in rows]
    spark.createDataFrame(data, ORDERS).write.format("delta").mode("append").partitionBy(
        "order_date"
    ).save(settings.table_path("orders"))


def _customer_events(spark, settings, rows):
    """Apply customer change events ``(city, updated_at)`` of C1 to ``dim_customer``."""
    from jobs.silver_customers import SPEC

    events = [("C1", "Ada", None, city, "gold", "U", ts) for city, ts in rows]
    apply_scd2(
        spark, settings.table_path("dim_customer"), spark.createDataFrame(events, EVENTS), SPEC
    )


def _fact(spark, settings):
    df = spark.read.format("delta").load(settings.table_path("fact_sales"))
    return {r.order_id: r.customer_city for r in df.collect()}


@pytest.mark.slow  # a long scenario: in the full gate, not the fast loop
def test_increments_load_new_orders_and_correct_history_changes(spark, settings):
    spark.createDataFrame(
        [("P1", "books", datetime(2020, 1, 1), None)],
        "product_id string, category string, valid_from timestamp, valid_to timestamp",
    ).write.format("delta").save(settings.table_path("products"))
    _customer_events(spark, settings, [("Oslo", datetime(2024, 1, 1))])
    _orders(spark, settings, [("O1", datetime(2025, 1, 1, 9))])
    assert execute_job(spark, settings, "gold_daily_sales", batch_id="g0").status == "ok"
    _orders(spark, settings, [("O2", datetime(2025, 1, 3, 9))])
    first = execute_job(spark, settings, "gold_daily_sales", batch_id="g1")
    assert first.details["orders_loaded"] == 1
    assert _fact(spark, settings) == {"O1": "Oslo", "O2": "Oslo"}

    # a late event: C1 moved to Lima on Jan 2, so O2 (Jan 3) had the Lima version; and a
    # new order on Jan 4
    _customer_events(spark, settings, [("Lima", datetime(2025, 1, 2))])
    _orders(spark, settings, [("O3", datetime(2025, 1, 4, 9))])
    fact_before = table_version(spark, settings.table_path("fact_sales"))
    second = execute_job(spark, settings, "gold_daily_sales", batch_id="g2")
    assert _fact(spark, settings) == {"O1": "Oslo", "O2": "Lima", "O3": "Lima"}
    assert second.details["corrected_by_customer_id"] == 1  # O2 only; O1 kept its version
    assert second.details["orders_loaded"] == 1
    # daily_revenue recomputed for exactly the two dates that changed, reading only the
    # fact files that hold them (Jan 3 and Jan 4; data skipping leaves Jan 1's file out)
    assert second.details["dates_recomputed"] == 2
    read = second.reads["fact_sales"]
    assert (read["files_read"], read["files_total"]) == (2, 3)
    assert table_version(spark, settings.table_path("fact_sales")) == fact_before + 2
    daily = spark.read.format("delta").load(settings.table_path("daily_revenue"))
    assert sorted((r.order_date.day, r.orders) for r in daily.collect()) == [(1, 1), (3, 1), (4, 1)]

    # nothing new: no stream has an increment and no table gets a version
    versions = {
        t: table_version(spark, settings.table_path(t)) for t in ("fact_sales", "daily_revenue")
    }
    third = execute_job(spark, settings, "gold_daily_sales", batch_id="g3")
    assert third.details["noop"] is True
    assert {t: table_version(spark, settings.table_path(t)) for t in versions} == versions


def test_differing_keeps_only_rows_whose_dimension_columns_changed(spark):
    cols = ", ".join(f"{c} {'long' if c == 'customer_sk' else 'string'}" for c in gold.FACT_COLUMNS)
    base = dict.fromkeys(gold.FACT_COLUMNS, "x")
    stored_rows = [
        {**base, "order_id": "O1", "customer_sk": 1, "customer_city": "Oslo"},
        {**base, "order_id": "O2", "customer_sk": 1, "customer_city": None},
        {**base, "order_id": "O3", "customer_sk": 1, "customer_city": "Oslo"},
    ]
    recomputed_rows = [
        {**base, "order_id": "O1", "customer_sk": 1, "customer_city": "Oslo"},  # same
        {**base, "order_id": "O2", "customer_sk": 1, "customer_city": None},  # same (NULL-safe)
        {**base, "order_id": "O3", "customer_sk": 2, "customer_city": "Lima"},  # moved
        {**base, "order_id": "O4", "customer_sk": 2, "customer_city": "Lima"},  # not loaded
    ]

    def as_rows(rows: list[dict]) -> list[tuple]:
        return [tuple(r[c] for c in gold.FACT_COLUMNS) for r in rows]

    out = gold.differing(
        spark.createDataFrame(as_rows(recomputed_rows), cols),
        spark.createDataFrame(as_rows(stored_rows), cols),
    )
    assert [(r.order_id, r.customer_city) for r in out.collect()] == [("O3", "Lima")]


def test_corrections_read_only_orders_dated_from_the_earliest_change(spark):
    """A change-feed row moves orders only from where it changes: an inserted version from
    its valid_from, a version whose end moved from the earlier end, and an update that
    changed anything else from its valid_from. The filter keeps orders dated from the
    earliest of those; with no rows it keeps everything."""
    schema = (
        "customer_id string, city string, valid_from timestamp, valid_to timestamp, "
        "is_current boolean, _change_type string, _commit_version long"
    )
    old, jan = datetime(2024, 6, 1), lambda d, h=0: datetime(2025, 1, d, h)
    daily = [
        ("C1", "Oslo", jan(3, 23), None, True, "insert", 7),
        # C2's version of June 2024 closed on Jan 2 (a newer one opened): only its end moved
        ("C2", "Rome", old, None, True, "update_preimage", 7),
        ("C2", "Rome", old, jan(2, 8), False, "update_postimage", 7),
    ]
    orders = spark.createDataFrame(
        [(f"O{d}", date(2025, 1, d)) for d in (1, 2, 3, 4)], "order_id string, order_date date"
    )

    def kept(rows):
        filtered = gold.affected_since(spark.createDataFrame(rows, schema))(orders)
        return sorted(r.order_id for r in filtered.collect())

    assert kept(daily) == ["O2", "O3", "O4"]
    # an update that changed the city too changes the version's whole interval
    rewritten = [daily[1], ("C2", "Lima", old, jan(2, 8), False, "update_postimage", 7)]
    assert kept(rewritten) == ["O1", "O2", "O3", "O4"]
    # a deleted version changes from its valid_from
    assert kept([("C3", "Oslo", jan(4), None, True, "delete", 8)]) == ["O4"]
    assert kept([]) == ["O1", "O2", "O3", "O4"]
