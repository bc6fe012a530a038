"""Silver orders x current customers x products -> ``fact_sales`` and ``daily_revenue``.

``fact_sales`` is partitioned by ``order_date``; each order carries the attributes of
its customer's *current* version (``is_current``) and of its product. Orders whose
customer has no current version (deleted, or never seen) keep NULL attributes rather
than being dropped: facts are never lost to a dimension gap.

By default gold is rebuilt whole from silver on every run. With
``jobs.gold_daily_sales.recompute_days: N`` (once gold exists) only the newest N days of
``order_date`` are recomputed and replaced (Delta ``replaceWhere``); the orders read is
restricted to those partitions and checked by the orders table's ``pruning_guard``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pydantic import Field
from pyspark.sql import functions as F

from lakehouse.config import Identifier, JobSettings
from lakehouse.pipeline import JobContext
from lakehouse.spark.delta import is_delta_table
from lakehouse.tuning.pruning import (
    PartitionRange,
    check_pruning,
    partition_values,
    read_partitions,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, DataFrameWriter, SparkSession

JOB = "gold_daily_sales"


@dataclass(frozen=True)
class GoldOutput:
    fact: DataFrame
    daily: DataFrame


def transform(orders: DataFrame, customers: DataFrame, products: DataFrame) -> GoldOutput:
    """Build the sales fact and its daily aggregate (pure: no IO)."""
    current = customers.where(F.col("is_current")).select(
        "customer_id",
        F.col("city").alias("customer_city"),
        F.col("tier").alias("customer_tier"),
    )
    prods = products.select("product_id", F.col("category").alias("product_category"))
    fact = (
        orders.join(current, "customer_id", "left")
        .join(prods, "product_id", "left")
        .select(
            "order_id",
            "order_date",
            "order_ts",
            "customer_id",
            "customer_city",
            "customer_tier",
            "product_id",
            "product_category",
            "quantity",
            "unit_price",
            "amount",
        )
    )
    daily = fact.groupBy("order_date").agg(
        F.count("*").alias("orders"),
        F.sum("quantity").cast("long").alias("units"),
        F.sum("amount").cast("decimal(18,2)").alias("revenue"),
        F.countDistinct("customer_id").alias("customers"),
    )
    return GoldOutput(fact=fact, daily=daily)


class Config(JobSettings):
    """``conf/jobs/gold_daily_sales.yaml``."""

    orders_table: Identifier = "orders"
    customers_table: Identifier = "dim_customer"
    products_table: Identifier = "products"
    fact_table: Identifier = "fact_sales"
    daily_table: Identifier = "daily_revenue"
    #: None: rebuild gold whole from silver every run. N: once gold exists, recompute only
    #: the newest N days of order_date (replaceWhere), reading just those partitions of
    #: the orders table under its pruning_guard. Orders older than the window that arrive
    #: late are not picked up until a full rebuild (recompute_days: null).
    recompute_days: int | None = Field(default=None, ge=1, le=36_600)


def _window(spark: SparkSession, orders_path: str, days: int) -> PartitionRange | None:
    """The newest ``days`` days of ``order_date`` in the orders table (from the Delta log)."""
    row = partition_values(spark, orders_path).agg(F.max("order_date").alias("hi")).first()
    if row is None or row["hi"] is None:
        return None
    hi: date = row["hi"]
    return PartitionRange("order_date", hi - timedelta(days=days - 1), hi)


def _read_orders(ctx: JobContext[Config], window: PartitionRange | None) -> DataFrame:
    """All orders, or only the window's partitions under the table's pruning guard."""
    cfg = ctx.config
    if window is None:
        return ctx.read(cfg.orders_table)
    # Only the window's partitions; the guard (tables.<orders>.pruning_guard) proves the
    # scan stayed inside them, from the executed scan's metrics.
    path = ctx.input_path(cfg.orders_table)
    orders = read_partitions(ctx.spark, path, window)
    ctx.result.reads[cfg.orders_table] = check_pruning(
        orders,
        table=cfg.orders_table,
        path=path,
        declared=window,
        policy=ctx.settings.tables[cfg.orders_table].pruning_guard,
    ).as_report()
    ctx.result.details["window"] = window.describe()
    return orders


def _writers(
    ctx: JobContext[Config], out: GoldOutput, window: PartitionRange | None
) -> tuple[DataFrameWriter, DataFrameWriter]:
    """Writers of the fact and the daily table: whole rebuild, or replace just the window."""
    partition_by = ctx.settings.tables[ctx.config.fact_table].partition_by
    fact = out.fact.write.format("delta").mode("overwrite").partitionBy(*partition_by)
    daily = out.daily.write.format("delta").mode("overwrite")
    if window is None:  # gold is rebuilt whole from silver
        fact = fact.option("partitionOverwriteMode", "static").option("overwriteSchema", "true")
        return fact, daily.option("overwriteSchema", "true")
    # replace just the window (Delta checks every written row matches it)
    return fact.option("replaceWhere", _sql(window)), daily.option("replaceWhere", _sql(window))


def run(ctx: JobContext[Config]) -> None:
    cfg = ctx.config
    orders_path = ctx.input_path(cfg.orders_table)
    fact_path = ctx.output_path(cfg.fact_table)
    daily_path = ctx.output_path(cfg.daily_table)
    window = None
    if cfg.recompute_days is not None and is_delta_table(ctx.spark, fact_path):
        window = _window(ctx.spark, orders_path, cfg.recompute_days)
    customers = ctx.read(cfg.customers_table)
    products = ctx.read(cfg.products_table)
    orders = _read_orders(ctx, window)
    out = transform(orders, customers, products)
    fact_writer, daily_writer = _writers(ctx, out, window)
    ctx.writes.save(cfg.fact_table, fact_writer, fact_path)
    ctx.writes.save(cfg.daily_table, daily_writer, daily_path)
    fact = ctx.spark.read.format("delta").load(fact_path)
    if window is not None:
        fact = fact.where(window.filter())
    n_in = orders.count()
    n_fact = fact.count()
    ctx.result.rows_in = n_in
    ctx.result.rows_written = n_fact
    ctx.result.check_reconciled(rows_in=n_in, accepted=n_fact, quarantined=0)
    ctx.result.details["daily_rows"] = ctx.spark.read.format("delta").load(daily_path).count()


def _sql(window: PartitionRange) -> str:
    """The window as a replaceWhere predicate (dates from the Delta log, ISO literals)."""
    lo, hi = (date.fromisoformat(str(v)) for v in (window.start, window.end))
    return (
        f"{window.column} >= DATE'{lo.isoformat()}' AND {window.column} <= DATE'{hi.isoformat()}'"
    )
