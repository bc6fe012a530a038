from datetime import date, datetime
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import functions as F

import jobs.gold_daily_sales as gold
from lakehouse.pipeline import execute_job


def test_fact_uses_current_customer_and_keeps_orphans(spark):
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
        [("P1", "books"), ("P2", "toys")], "product_id string, category string"
    )
    out = gold.transform(orders, customers, products)
    expected_fact = spark.createDataFrame(
        [
            (
                "O1",
                date(2025, 1, 1),
                datetime(2025, 1, 1, 9),
                "C1",
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
                "Lima",
                "platinum",
                "P2",
                "toys",
                1,
                Decimal("4.00"),
                Decimal("4.00"),
            ),
        ],
        "order_id string, order_date date, order_ts timestamp, customer_id string, "
        "customer_city string, customer_tier string, product_id string, product_category string, "
        "quantity int, unit_price decimal(12,2), amount decimal(14,2)",
    )
    assert_df_equality(out.fact, expected_fact, ignore_row_order=True, ignore_nullable=True)
    expected_daily = spark.createDataFrame(
        [
            (date(2025, 1, 1), 2, 3, Decimal("4.50"), 2),
            (date(2025, 1, 2), 1, 1, Decimal("4.00"), 1),
        ],
        "order_date date, orders long, units long, revenue decimal(18,2), customers long",
    )
    assert_df_equality(out.daily, expected_daily, ignore_row_order=True, ignore_nullable=True)


def _silver(spark, settings, orders):
    """Write tiny silver tables where the gold job reads them."""
    schema = (
        "order_id string, customer_id string, product_id string, quantity int, "
        "unit_price decimal(12,2), amount decimal(14,2), order_ts timestamp, order_date date"
    )
    rows = [
        (oid, "C1", "P1", 1, Decimal("2.00"), Decimal("2.00"), datetime(d.year, d.month, d.day), d)
        for oid, d in orders
    ]
    spark.createDataFrame(rows, schema).write.format("delta").mode("overwrite").partitionBy(
        "order_date"
    ).save(settings.table_path("orders"))
    spark.createDataFrame(
        [("C1", "Oslo", "gold", datetime(2024, 1, 1), None, True)],
        "customer_id string, city string, tier string, valid_from timestamp, "
        "valid_to timestamp, is_current boolean",
    ).write.format("delta").mode("overwrite").save(settings.table_path("dim_customer"))
    spark.createDataFrame([("P1", "books")], "product_id string, category string").write.format(
        "delta"
    ).mode("overwrite").save(settings.table_path("products"))


def test_recompute_window_replaces_only_the_newest_days_under_the_guard(
    spark, settings, monkeypatch
):
    import pytest

    from lakehouse.config import load_config
    from lakehouse.tuning.pruning import PartitionPruningError

    days = [date(2025, 1, d) for d in (1, 2, 3, 4)]
    _silver(spark, settings, [(f"O{i}", d) for i, d in enumerate(days)])
    execute_job(spark, settings, "gold_daily_sales", batch_id="g1")  # no gold yet: full build
    windowed = load_config(
        "local",
        conf_dir=settings.conf_dir,
        overrides={
            "paths": {"data_root": settings.paths.data_root},
            "jobs": {"gold_daily_sales": {"recompute_days": 2}},
            "tables": {"orders": {"pruning_guard": "fail"}},
        },
    )
    # silver changes: a new order on day 4 (inside the window), one on day 1 (outside)
    _silver(
        spark,
        settings,
        [(f"O{i}", d) for i, d in enumerate(days)] + [("N4", days[3]), ("N1", days[0])],
    )
    result = execute_job(spark, windowed, "gold_daily_sales", batch_id="g2")
    assert result.details["window"] == "order_date BETWEEN '2025-01-03' AND '2025-01-04'"
    read = result.reads["orders"]
    assert (read["partitions_read"], read["partitions_total"]) == (2, 4)
    fact = spark.read.format("delta").load(settings.table_path("fact_sales"))
    assert sorted(r.order_id for r in fact.collect()) == ["N4", "O0", "O1", "O2", "O3"]
    daily = {
        r.order_date: r.orders
        for r in spark.read.format("delta").load(settings.table_path("daily_revenue")).collect()
    }
    assert daily == {days[0]: 1, days[1]: 1, days[2]: 1, days[3]: 2}

    # a window read that does not prune fails the job before gold is touched
    before = spark.read.format("delta").load(settings.table_path("fact_sales")).count()
    monkeypatch.setattr(
        gold,
        "read_partitions",
        lambda spark, path, rng: (
            spark.read.format("delta")
            .load(path)
            .where((F.col("order_date") >= F.lit(rng.start)) | (F.col("quantity") < 0))
        ),
    )
    with pytest.raises(PartitionPruningError, match="table 'orders' declares order_date"):
        execute_job(spark, windowed, "gold_daily_sales", batch_id="g3")
    assert spark.read.format("delta").load(settings.table_path("fact_sales")).count() == before
