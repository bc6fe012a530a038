"""Silver -> gold: ``fact_sales`` (liquid-clustered by day) and ``daily_revenue``.

Each order in ``fact_sales`` carries the customer version **in effect at its order time**
(an as-of join on ``[valid_from, valid_to)`` of ``dim_customer``), with that version's
surrogate key ``customer_sk``, and the category of the product version in effect at that
time (``products`` is an SCD2 dimension too). An order whose customer or product had no
version at that time (not yet created, or deleted) keeps NULL attributes rather than being
dropped: facts are never lost to a dimension gap.

The job is incremental; each run, in this order:

1. ``dim_customer``'s Change Data Feed names the customers whose history changed since the
   last run (a late event can change which version was in effect for orders already
   loaded). Their facts are recomputed and only the rows that differ are updated, with a
   MERGE restricted to the dates of those rows (an ``IN`` list, not a chain of ORs).
2. ``products``' Change Data Feed does the same for products whose history changed.
3. New ``orders`` (Delta's streaming source) are joined and appended.
4. ``fact_sales``' own Change Data Feed names the order dates that changed;
   ``daily_revenue`` is recomputed for exactly those dates (a read of just their files,
   checked by ``fact_sales``' ``pruning_guard``) and replaced with
   ``replaceWhere order_date IN (...)``.

With nothing new, no stream has an increment and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import TYPE_CHECKING

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakehouse.config import Identifier, JobSettings
from lakehouse.pipeline import JobContext
from lakehouse.pipeline.incremental import Increment
from lakehouse.spark.delta import append_writer, is_delta_table
from lakehouse.tuning.pruning import PartitionRange, check_pruning

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

JOB = "gold_daily_sales"
#: The columns of ``fact_sales``, in order.
FACT_COLUMNS = (
    "order_id",
    "order_date",
    "order_ts",
    "customer_id",
    "customer_sk",
    "customer_city",
    "customer_tier",
    "product_id",
    "product_category",
    "quantity",
    "unit_price",
    "amount",
)
#: Columns a correction may change (everything that comes from a dimension).
DIMENSION_COLUMNS = ("customer_sk", "customer_city", "customer_tier", "product_category")


class Config(JobSettings):
    """``conf/jobs/gold_daily_sales.yaml``."""

    orders_table: Identifier = "orders"
    customers_table: Identifier = "dim_customer"
    products_table: Identifier = "products"
    fact_table: Identifier = "fact_sales"
    daily_table: Identifier = "daily_revenue"


@dataclass(frozen=True)
class GoldOutput:
    fact: DataFrame
    daily: DataFrame


def customer_versions(customers: DataFrame) -> DataFrame:
    """Each customer version with its surrogate key (a hash of the key and ``valid_from``)."""
    return customers.select(
        F.col("customer_id").alias("_cid"),
        F.col("valid_from").alias("_cfrom"),
        F.col("valid_to").alias("_cto"),
        F.xxhash64("customer_id", "valid_from").alias("customer_sk"),
        F.col("city").alias("customer_city"),
        F.col("tier").alias("customer_tier"),
    )


def _in_effect(key: str, alias: str) -> Column:
    """Join condition: the version (``_<alias>id``, ``_<alias>from``, ``_<alias>to``) of
    ``key`` in effect at ``order_ts``."""
    start, end = F.col(f"_{alias}from"), F.col(f"_{alias}to")
    return (
        (F.col(key) == F.col(f"_{alias}id"))
        & (F.col("order_ts") >= start)
        & (end.isNull() | (F.col("order_ts") < end))
    )


def facts(orders: DataFrame, customers: DataFrame, products: DataFrame) -> DataFrame:
    """Orders with the customer and product versions in effect at ``order_ts`` (pure: no
    IO). Every order gives exactly one fact row."""
    versions = customer_versions(customers)
    prods = products.select(
        F.col("product_id").alias("_pid"),
        F.col("valid_from").alias("_pfrom"),
        F.col("valid_to").alias("_pto"),
        F.col("category").alias("product_category"),
    )
    return (
        orders.join(versions, _in_effect("customer_id", "c"), "left")
        .join(prods, _in_effect("product_id", "p"), "left")
        .select(*FACT_COLUMNS)
    )


def daily_revenue(fact: DataFrame) -> DataFrame:
    """Orders, units, revenue and distinct customers per ``order_date`` (pure)."""
    return fact.groupBy("order_date").agg(
        F.count("*").alias("orders"),
        F.sum("quantity").cast("long").alias("units"),
        F.sum("amount").cast("decimal(18,2)").alias("revenue"),
        F.countDistinct("customer_id").alias("customers"),
    )


def transform(orders: DataFrame, customers: DataFrame, products: DataFrame) -> GoldOutput:
    """The whole of gold from silver (pure): what the increments add up to."""
    fact = facts(orders, customers, products)
    return GoldOutput(fact=fact, daily=daily_revenue(fact))


def differing(recomputed: DataFrame, stored: DataFrame) -> DataFrame:
    """Rows of ``recomputed`` whose dimension columns differ (NULL-safe) from the stored fact
    row of the same order (pure)."""
    old = stored.select("order_id", *[F.col(c).alias(f"_old_{c}") for c in DIMENSION_COLUMNS])
    same = [F.col(c).eqNullSafe(F.col(f"_old_{c}")) for c in DIMENSION_COLUMNS]
    all_same = same[0]
    for cond in same[1:]:
        all_same = all_same & cond
    return recomputed.join(old, "order_id", "inner").where(~all_same).select(*FACT_COLUMNS)


def affected_since(changes: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """A filter keeping the orders (or facts) a dimension's change-feed rows ``changes``
    can affect: those dated on or after the earliest time any of them changes.

    An order's version in effect is the one whose ``[valid_from, valid_to)`` holds its
    ``order_ts``; it changes only where a version was inserted, updated or removed. An
    inserted or deleted version changes from its ``valid_from``. An update whose pre- and
    post-image differ only in ``valid_to`` and ``is_current`` (the usual one: a version
    closed because a newer one opened) changes from the earlier of its two ends; any
    other update from its ``valid_from``. A daily increment's changes start today, so the
    corrections read today's files of the date-clustered tables, not all of history.
    """
    meta = {"_change_type", "_commit_version", "_commit_timestamp"}
    same = [c for c in changes.columns if c not in meta | {"valid_to", "is_current"}]
    update = F.col("_change_type").startswith("update_")
    # pre- and post-image of one update, equal but for the end: one group of two rows
    per_row = (
        changes.withColumn("_pair", F.when(update, F.col("_commit_version")))
        .groupBy("_pair", *same)
        .agg(
            F.count(F.lit(1)).alias("_n"),
            F.min("valid_to").alias("_end"),
            F.max(update.cast("int")).alias("_update"),
        )
    )
    moved_end = (F.col("_update") == 1) & (F.col("_n") == 2) & F.col("_end").isNotNull()
    since = F.when(moved_end, F.col("_end")).otherwise(F.col("valid_from"))
    # the date in the session's time zone, as order_date is: no Python-side conversion
    row = per_row.agg(F.min(F.to_date(since))).first()
    day = row[0] if row is not None else None
    if day is None:
        return lambda df: df
    return lambda df: df.where(F.col("order_date") >= F.lit(day))


def _dates_in(column: str, dates: list[date]) -> str:
    """``column IN (DATE'…', …)``: a replaceWhere / MERGE predicate from dates read back from
    a table (ISO literals, never user text)."""
    values = ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(set(dates)))
    return f"{column} IN ({values})"


# ----------------------------------------------------------------------------- IO


def _read(spark: SparkSession, ctx: JobContext[Config], table: str) -> DataFrame:
    return spark.read.format("delta").load(ctx.input_path(table))


def _correct(ctx: JobContext[Config], inc: Increment, key: str) -> None:
    """Recompute the facts of the dimension keys an increment of a change feed names, and
    update the fact rows that differ."""
    cfg = ctx.config
    spark = inc.spark
    fact_path = ctx.output_path(cfg.fact_table)
    if not is_delta_table(spark, fact_path):
        return  # nothing loaded yet: the orders stream joins with the dimension as it is
    changes = inc.df.where(F.col(key).isNotNull())
    keys = changes.select(key).distinct().persist()
    try:
        inc.rows_read = keys.count()
        since = affected_since(changes)
        stored = since(spark.read.format("delta").load(fact_path)).join(keys, key, "left_semi")
        orders = since(_read(spark, ctx, cfg.orders_table)).join(keys, key, "left_semi")
        recomputed = facts(
            orders,
            _read(spark, ctx, cfg.customers_table),
            _read(spark, ctx, cfg.products_table),
        )
        changed = differing(recomputed, stored).persist()
    finally:
        keys.unpersist()
    try:
        # counted before the MERGE: writing fact_sales invalidates the cached rows
        n_changed = changed.count()
        dates = [r[0] for r in changed.select("order_date").distinct().collect()]
        if dates:
            condition = f"t.order_id = s.order_id AND {_dates_in('t.order_date', dates)}"

            def merge() -> None:
                (
                    DeltaTable.forPath(spark, fact_path)
                    .alias("t")
                    .merge(changed.alias("s"), condition)
                    .whenMatchedUpdate(set={c: f"s.{c}" for c in DIMENSION_COLUMNS})
                    .execute()
                )

            inc.run(spark, cfg.fact_table, merge)
            inc.rows_written = n_changed
    finally:
        changed.unpersist()
    _count(ctx, f"corrected_by_{key}", inc.rows_written, read=inc.rows_read)


def _load(ctx: JobContext[Config], inc: Increment) -> None:
    """Append the facts of new orders."""
    cfg = ctx.config
    spark = inc.spark
    fact = facts(
        inc.df,
        _read(spark, ctx, cfg.customers_table),
        _read(spark, ctx, cfg.products_table),
    ).persist()
    try:
        n = fact.count()
        partition_by = ctx.settings.tables[cfg.fact_table].partition_by
        inc.save(
            cfg.fact_table,
            append_writer(fact, partition_by=partition_by),
            ctx.output_path(cfg.fact_table),
        )
    finally:
        fact.unpersist()
    inc.rows_read = inc.rows_written = n
    _count(ctx, "orders_loaded", n, read=n)
    ctx.result.check_reconciled(rows_in=n, accepted=n, quarantined=0)


def _aggregate(ctx: JobContext[Config], inc: Increment) -> None:
    """Recompute ``daily_revenue`` for the dates whose facts changed."""
    cfg = ctx.config
    spark = inc.spark
    dates = [r[0] for r in inc.df.select("order_date").distinct().collect() if r[0] is not None]
    inc.rows_read = inc.df.count()
    if not dates:
        return
    fact_path = ctx.output_path(cfg.fact_table)
    touched = spark.read.format("delta").load(fact_path).where(F.col("order_date").isin(dates))
    # The read must stay inside the changed dates: the fact table's pruning_guard checks
    # it from the executed scan's metrics (files whose order_date range meets the dates,
    # or partitions if the table is partitioned by it).
    ctx.result.reads[cfg.fact_table] = check_pruning(
        touched,
        table=cfg.fact_table,
        path=fact_path,
        declared=PartitionRange("order_date", min(dates), max(dates)),
        policy=ctx.settings.tables[cfg.fact_table].pruning_guard,
    ).as_report()
    daily = daily_revenue(touched)
    path = ctx.output_path(cfg.daily_table)
    writer = daily.write.format("delta").mode("overwrite")
    if is_delta_table(spark, path):
        writer = writer.option("replaceWhere", _dates_in("order_date", dates))
    inc.save(cfg.daily_table, writer, path)
    inc.rows_written = len(dates)
    _count(ctx, "dates_recomputed", len(dates), read=inc.rows_read)


def _count(ctx: JobContext[Config], what: str, written: int, *, read: int) -> None:
    details = ctx.result.details
    details[what] = details.get(what, 0) + written
    ctx.result.rows_in += read
    ctx.result.rows_written += written


def run(ctx: JobContext[Config]) -> None:
    cfg = ctx.config
    # 1-2: corrections from the dimensions' change feeds. A new checkpoint starts with the
    # dimension's current snapshot; before the first load (3) there are no facts to correct,
    # and the load joins every order with the dimension as it is.
    ctx.stream_table(
        cfg.customers_table, partial(_correct, ctx, key="customer_id"), change_feed=True
    )
    ctx.stream_table(cfg.products_table, partial(_correct, ctx, key="product_id"), change_feed=True)
    # 3: new orders.
    ctx.stream_table(cfg.orders_table, partial(_load, ctx))
    # 4: daily_revenue for the dates whose facts changed (fact_sales is this job's output
    # and its own input: the change feed of what 1-3 wrote).
    ctx.stream_table(cfg.fact_table, partial(_aggregate, ctx), change_feed=True)
