"""Bronze orders and products -> typed, deduplicated silver tables.

Each bronze table is read incrementally (Delta's streaming source): a run handles only the
rows appended since the last one. Orders failing basic rules are quarantined with a
reason: a NULL key, a quantity that is not a positive integer, a price that is not a
non-negative decimal, an order time that does not parse or lies outside the configured
date range, or a second delivery of an order id already seen (in the same increment or
already in ``orders``). Accepted orders are appended to the date-clustered table.

Each catalogue file is a full snapshot of the products. The increment's latest snapshot
goes through :func:`lakehouse.cdc.apply_snapshot` into ``products``, an SCD2 dimension: a
changed product opens a version, a product missing from the snapshot (a discontinued one)
is closed, both at the snapshot's latest ``updated_at``. A product whose row in the
snapshot is rejected keeps its version in effect; a snapshot older than the table is
quarantined whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

from lakehouse.cdc import SCD2Spec, SnapshotOrderError, apply_snapshot
from lakehouse.config import Identifier, JobSettings
from lakehouse.pipeline import JobContext
from lakehouse.pipeline.incremental import Increment
from lakehouse.quality import (
    apply_constraints,
    apply_table_quality,
    to_quarantine,
    write_quarantine,
)
from lakehouse.spark.delta import (
    append_writer,
    is_delta_table,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

JOB = "silver_orders"
PRODUCTS_STAGE = "silver_orders:products"
ORDER_KEYS = ("order_id", "customer_id", "product_id")
#: ``products`` is an SCD2 dimension; a catalogue snapshot is as of its latest ``updated_at``.
PRODUCTS_SPEC = SCD2Spec(keys=["product_id"], sequence_by="updated_at")


class Config(JobSettings):
    """``conf/jobs/silver_orders.yaml``."""

    source_table: Identifier = "bronze_orders"
    products_source_table: Identifier = "bronze_products"
    target_table: Identifier = "orders"
    products_table: Identifier = "products"
    quarantine_table: Identifier = "quarantine_silver_orders"
    #: Orders dated outside [min_order_date, max_order_date] are quarantined.
    min_order_date: str = "2000-01-01"
    max_order_date: str = "2100-01-01"


@dataclass(frozen=True)
class Split:
    accepted: DataFrame
    rejected: DataFrame


def _blank_to_null(name: str) -> Column:
    trimmed = F.trim(F.col(name))
    return F.when(trimmed == "", None).otherwise(trimmed)


def _first_reason(*rules: tuple[Column, str]) -> Column:
    expr = F.when(rules[0][0], rules[0][1])
    for cond, text in rules[1:]:
        expr = expr.when(cond, text)
    return expr


def transform(
    bronze_orders: DataFrame,
    *,
    min_date: date,
    max_date: date,
    batch_id: str,
    known_ids: DataFrame | None = None,
) -> Split:
    """Type, validate and deduplicate raw orders.

    Among rows with the same ``order_id`` the earliest ingested (then source file, then
    raw content) is kept; later deliveries are quarantined as duplicates, and so are
    rows whose ``order_id`` is in ``known_ids`` (orders an earlier increment loaded).
    """
    typed = bronze_orders.select(
        *[_blank_to_null(k).alias(k) for k in ORDER_KEYS],
        F.expr("try_cast(quantity AS INT)").alias("quantity"),
        F.expr("try_cast(unit_price AS DECIMAL(12,2))").alias("unit_price"),
        F.expr("try_to_timestamp(order_ts, 'yyyy-MM-dd HH:mm:ss')").alias("order_ts"),
        F.struct(*[F.col(c) for c in bronze_orders.columns]).alias("_raw"),
    ).withColumn("order_date", F.to_date("order_ts"))
    reason = _first_reason(
        (F.col("order_id").isNull(), "null key: order_id"),
        (F.col("customer_id").isNull(), "null key: customer_id"),
        (F.col("product_id").isNull(), "null key: product_id"),
        (F.col("quantity").isNull(), "quantity is not an integer"),
        (F.col("quantity") <= 0, "quantity must be positive"),
        (F.col("unit_price").isNull() | (F.col("unit_price") < 0), "invalid unit_price"),
        (F.col("order_ts").isNull(), "unparseable order_ts"),
        (
            (F.col("order_date") < F.lit(min_date)) | (F.col("order_date") > F.lit(max_date)),
            "order_date out of range",
        ),
    )
    flagged = typed.withColumn("_reason", reason)
    order = Window.partitionBy("order_id").orderBy(
        F.col("_raw._ingest_time"), F.col("_raw._source_file"), F.to_json(F.col("_raw"))
    )
    valid = flagged.where(F.col("_reason").isNull())
    loaded = flagged.limit(0)
    if known_ids is not None:
        ids = known_ids.select("order_id").distinct().withColumn("_known", F.lit(True))
        marked = valid.join(ids, "order_id", "left").select(*valid.columns, "_known")
        loaded = marked.where(F.col("_known").isNotNull()).drop("_known")
        valid = marked.where(F.col("_known").isNull()).drop("_known")
    valid = valid.withColumn("_rn", F.row_number().over(order))
    accepted = valid.where(F.col("_rn") == 1).select(
        *ORDER_KEYS,
        "quantity",
        "unit_price",
        (F.col("quantity") * F.col("unit_price")).cast("decimal(14,2)").alias("amount"),
        "order_ts",
        "order_date",
    )
    rejects = (
        flagged.where(F.col("_reason").isNotNull())
        .select("_raw", "_reason")
        .unionByName(
            valid.where(F.col("_rn") > 1)
            .select("_raw")
            .unionByName(loaded.select("_raw"))
            .select("_raw", F.lit("duplicate order_id").alias("_reason"))
        )
    )
    rejected = to_quarantine(
        rejects,
        stage=JOB,
        reason=F.col("_reason"),
        source=F.col("_raw._source_file"),
        record=F.to_json(F.col("_raw")),
        batch_id=batch_id,
    )
    return Split(accepted=accepted, rejected=rejected)


@dataclass(frozen=True)
class ProductsSplit:
    """A catalogue increment: the snapshot to apply (``accepted``, with ``updated_at``), its
    rejected rows, and the product ids the snapshot rejected rows for (``protected``:
    they keep their version in effect rather than being deleted)."""

    accepted: DataFrame
    rejected: DataFrame
    protected: DataFrame


def transform_products(bronze_products: DataFrame, *, batch_id: str) -> ProductsSplit:
    """Type the catalogue. Each landing file is a full snapshot; the increment's latest
    (greatest ``updated_at``, then ingest time, then file) is the one applied, its other
    files' rows are superseded, and so is all but the latest row of a product id within
    the snapshot."""
    typed = bronze_products.select(
        _blank_to_null("product_id").alias("product_id"),
        F.col("name"),
        F.col("category"),
        F.expr("try_cast(price AS DECIMAL(12,2))").alias("price"),
        F.expr("try_to_timestamp(updated_at, 'yyyy-MM-dd HH:mm:ss')").alias("updated_at"),
        F.struct(*[F.col(c) for c in bronze_products.columns]).alias("_raw"),
    )
    reason = _first_reason(
        (F.col("product_id").isNull(), "null key: product_id"),
        (F.col("price").isNull() | (F.col("price") < 0), "invalid price"),
        (F.col("updated_at").isNull(), "unparseable updated_at"),
    )
    flagged = typed.withColumn("_reason", reason)
    # the snapshot of the increment: the file whose valid rows are the latest
    files = (
        flagged.groupBy(F.col("_raw._source_file").alias("_file"))
        .agg(
            F.max(F.when(F.col("_reason").isNull(), F.col("updated_at"))).alias("_at"),
            F.max("_raw._ingest_time").alias("_ingested"),
        )
        .orderBy(F.col("_at").desc_nulls_last(), F.col("_ingested").desc(), F.col("_file").desc())
        .limit(1)
        .withColumn("_chosen", F.lit(True))
    )
    marked = flagged.join(
        F.broadcast(files.select("_file", "_chosen")),
        F.col("_raw._source_file") == F.col("_file"),
        "left",
    ).withColumn("_chosen", F.coalesce(F.col("_chosen"), F.lit(False)))
    latest = Window.partitionBy("product_id").orderBy(
        F.col("updated_at").desc(), F.col("_raw._ingest_time").desc(), F.to_json(F.col("_raw"))
    )
    valid = marked.where(F.col("_reason").isNull() & F.col("_chosen")).withColumn(
        "_rn", F.row_number().over(latest)
    )
    accepted = valid.where(F.col("_rn") == 1).select(
        "product_id",
        "name",
        "category",
        "price",
        "updated_at",
        F.col("_raw._source_file").alias("_source"),
    )
    invalid = marked.where(F.col("_reason").isNotNull())
    rejects = (
        invalid.select("_raw", "_reason")
        .unionByName(
            valid.where(F.col("_rn") > 1).select(
                "_raw", F.lit("superseded product row").alias("_reason")
            )
        )
        .unionByName(
            marked.where(F.col("_reason").isNull() & ~F.col("_chosen")).select(
                "_raw", F.lit("superseded catalogue snapshot").alias("_reason")
            )
        )
    )
    rejected = to_quarantine(
        rejects,
        stage=PRODUCTS_STAGE,
        reason=F.col("_reason"),
        source=F.col("_raw._source_file"),
        record=F.to_json(F.col("_raw")),
        batch_id=batch_id,
    )
    protected = (
        invalid.where(F.col("_chosen") & F.col("product_id").isNotNull())
        .select("product_id")
        .distinct()
        .join(accepted.select("product_id"), "product_id", "left_anti")
    )
    return ProductsSplit(accepted=accepted, rejected=rejected, protected=protected)


def _apply_catalogue(
    ctx: JobContext[Config], inc: Increment, products: ProductsSplit
) -> tuple[int, DataFrame | None]:
    """Apply the increment's catalogue snapshot to ``products`` (SCD2): rows written, and
    the snapshot's rows if it is older than the table (refused, to be quarantined)."""
    cfg = ctx.config
    spark = inc.spark
    path = ctx.output_path(cfg.products_table)
    row = products.accepted.agg(F.max("updated_at")).first()
    snapshot_at = row[0] if row is not None else None
    if snapshot_at is None:
        return 0, None
    snapshot = products.accepted.drop("updated_at", "_source")
    if is_delta_table(spark, path):
        # a product whose snapshot row was rejected keeps the version in effect
        in_effect = spark.read.format("delta").load(path).where("is_current")
        kept = in_effect.join(products.protected, "product_id", "left_semi")
        snapshot = snapshot.unionByName(kept.select(*snapshot.columns))
    try:
        result = apply_snapshot(
            spark,
            path,
            snapshot,
            PRODUCTS_SPEC,
            snapshot_at=snapshot_at,
            txn=inc.identity(cfg.products_table),
        )
    except SnapshotOrderError as exc:
        stale = products.accepted.select(
            F.to_json(F.struct(*[c for c in products.accepted.columns if c != "_source"])).alias(
                "_record"
            ),
            "_source",
        )
        return 0, stale.withColumn("_reason", F.lit(f"stale catalogue snapshot: {exc}"))
    m = result.metrics
    details = ctx.result.details.setdefault("products_scd2", {})
    for key in ("inserted", "closed", "deleted", "snapshot_changed", "snapshot_deleted"):
        details[key] = details.get(key, 0) + int(m.get(key, 0))
    return int(m["inserted"] + m["updated"] + m["removed"]), None


def _write_rejects(ctx: JobContext[Config], inc: Increment, rejected: DataFrame) -> int:
    cfg = ctx.config
    return write_quarantine(
        inc.spark, rejected, ctx.output_path(cfg.quarantine_table), writes=inc,
        table=cfg.quarantine_table,
    )  # fmt: skip


def _products(ctx: JobContext[Config], inc: Increment) -> None:
    """One increment of catalogue files -> ``products`` (an SCD2 table, through
    :func:`~lakehouse.cdc.apply_snapshot`) and quarantine."""
    products = transform_products(inc.df, batch_id=ctx.batch_id)
    accepted = products.accepted.persist()
    try:
        products = ProductsSplit(accepted, products.rejected, products.protected)
        written, stale = _apply_catalogue(ctx, inc, products)
        rejected = products.rejected
        if stale is not None:
            rejected = rejected.unionByName(
                to_quarantine(
                    stale,
                    stage=PRODUCTS_STAGE,
                    reason=F.col("_reason"),
                    source=F.col("_source"),
                    record=F.col("_record"),
                    batch_id=ctx.batch_id,
                )
            )
        counts = {
            "input": inc.df.count(),
            "accepted": 0 if stale is not None else accepted.count(),
            "quarantined": rejected.count(),
        }
    finally:
        accepted.unpersist()
    ctx.result.check_reconciled(
        rows_in=counts["input"], accepted=counts["accepted"], quarantined=counts["quarantined"]
    )
    if counts["quarantined"]:
        _write_rejects(ctx, inc, rejected)
    _add(ctx, "products", counts, written)
    inc.rows_read, inc.rows_written = counts["input"], written


def _orders(ctx: JobContext[Config], inc: Increment) -> None:
    """One increment of bronze orders -> ``orders`` (append) and quarantine."""
    cfg = ctx.config
    target = ctx.output_path(cfg.target_table)
    if inc.committed(cfg.target_table, target):
        inc.replayed.append(cfg.target_table)  # quarantine was written before the orders
        return
    bronze = inc.df
    loaded = _loaded_ids(inc.spark, target, bronze)
    try:
        _load_orders(ctx, inc, loaded)
    finally:
        if loaded is not None:
            loaded.unpersist()


def _loaded_ids(spark: SparkSession, target: str, bronze: DataFrame) -> DataFrame | None:
    """The order ids of this increment that ``orders`` already holds, cached (filled by the
    first count that uses them): the table's ``order_id`` column is scanned once per
    increment against the increment's own ids, not shuffled whole for each count and write
    that follows."""
    if not is_delta_table(spark, target):
        return None
    ids = bronze.select(_blank_to_null("order_id").alias("order_id")).where(
        F.col("order_id").isNotNull()
    )
    return (
        spark.read.format("delta")
        .load(target)
        .select("order_id")
        .join(ids.distinct(), "order_id", "left_semi")
        .distinct()
        .persist()
    )


def _load_orders(ctx: JobContext[Config], inc: Increment, loaded: DataFrame | None) -> None:
    """Type, check and write one increment, given the ids of it ``orders`` already holds."""
    cfg = ctx.config
    target = ctx.output_path(cfg.target_table)
    bronze = inc.df
    out = transform(
        bronze,
        min_date=date.fromisoformat(cfg.min_order_date),
        max_date=date.fromisoformat(cfg.max_order_date),
        batch_id=ctx.batch_id,
        known_ids=loaded,
    )
    accepted, rejected = out.accepted, out.rejected
    # Data-quality expectations from tables.<target>.quality: `drop` rows join the rejects,
    # `fail` raises before anything is written.
    quality = apply_table_quality(
        inc.spark, ctx.settings, cfg.target_table, accepted, job=JOB,
        batch_id=f"{ctx.batch_id}.{inc.source}.{inc.id}",
    )  # fmt: skip
    ctx.result.details.setdefault("quality", []).extend(quality.report.as_details())
    rejected = rejected.unionByName(quality.quarantined)
    good = quality.accepted.persist()
    try:
        counts = {
            "input": bronze.count(),
            "accepted": good.count(),
            "quarantined": rejected.count(),
        }
        ctx.result.check_reconciled(
            rows_in=counts["input"], accepted=counts["accepted"], quarantined=counts["quarantined"]
        )
        if counts["quarantined"]:
            _write_rejects(ctx, inc, rejected)
        partition_by = ctx.settings.tables[cfg.target_table].partition_by
        inc.save(cfg.target_table, append_writer(good, partition_by=partition_by), target)
    finally:
        good.unpersist()
    _add(ctx, "orders", counts, counts["accepted"])
    inc.rows_read, inc.rows_written = counts["input"], counts["accepted"]


def _add(ctx: JobContext[Config], what: str, counts: dict[str, int], written: int) -> None:
    total = ctx.result.details.setdefault(what, {"input": 0, "accepted": 0, "quarantined": 0})
    for key in total:
        total[key] += counts[key]
    ctx.result.rows_in += counts["input"]
    ctx.result.rows_written += written
    ctx.result.rows_quarantined += counts["quarantined"]


def run(ctx: JobContext[Config]) -> None:
    cfg = ctx.config
    ctx.stream_table(cfg.products_source_table, partial(_products, ctx))
    ctx.stream_table(cfg.source_table, partial(_orders, ctx))
    # Delta CHECK constraints from tables.<table>.quality (added once, then no-ops).
    for table, key in (
        (cfg.target_table, "constraints"),
        (cfg.products_table, "products_constraints"),
    ):
        path = ctx.output_path(table)
        if is_delta_table(ctx.spark, path):
            ctx.result.details[key] = apply_constraints(
                ctx.spark, path, ctx.settings.tables[table].quality, table=table
            )
    result = ctx.result
    accepted = sum(result.details.get(k, {}).get("accepted", 0) for k in ("orders", "products"))
    result.check_reconciled(
        rows_in=result.rows_in, accepted=accepted, quarantined=result.rows_quarantined
    )
