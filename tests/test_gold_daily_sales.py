from datetime import date, datetime
from decimal import Decimal

from chispa import assert_df_equality

import jobs.gold_daily_sales as gold


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
