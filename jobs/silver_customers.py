"""Bronze customer change feed -> ``dim_customer``, an SCD Type 2 Delta table.

The job reads only the bronze rows appended since its last run (Delta's streaming source
over ``bronze_customers``) and applies each increment with
:func:`lakehouse.scd2.apply_scd2`, whose late-event handling makes increments safe in any
order. Rows whose key is NULL, whose ``updated_at`` does not parse, or whose ``op`` is not
I/U/D are quarantined with a reason; the rest are applied (ordering by ``updated_at``,
deletes on ``op = 'D'``, late events, replays).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from lakehouse.config import Identifier, JobSettings
from lakehouse.pipeline import JobContext
from lakehouse.pipeline.incremental import Increment
from lakehouse.quality import apply_constraints, to_quarantine, write_quarantine
from lakehouse.scd2 import SCD2Spec, apply_scd2
from lakehouse.spark.delta import is_delta_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

JOB = "silver_customers"
ATTRIBUTES = ("name", "email", "city", "tier")
SPEC = SCD2Spec(keys=["customer_id"], sequence_by="updated_at", delete_when="op = 'D'")


class Config(JobSettings):
    """``conf/jobs/silver_customers.yaml``: which tables the job reads and writes."""

    source_table: Identifier = "bronze_customers"
    target_table: Identifier = "dim_customer"
    quarantine_table: Identifier = "quarantine_silver_customers"


@dataclass(frozen=True)
class CustomerChanges:
    changes: DataFrame
    rejected: DataFrame


def transform(bronze: DataFrame, *, batch_id: str) -> CustomerChanges:
    """Type the raw change feed and split off rows that cannot be placed in history."""
    typed = bronze.select(
        F.trim(F.col("customer_id")).alias("customer_id"),
        *[F.col(c) for c in ATTRIBUTES],
        F.upper(F.trim(F.col("op"))).alias("op"),
        F.expr("try_to_timestamp(updated_at, 'yyyy-MM-dd HH:mm:ss')").alias("updated_at"),
        F.col("updated_at").alias("_raw_updated_at"),
        F.col("_source_file"),
    )
    reason = (
        F.when(
            F.col("customer_id").isNull() | (F.col("customer_id") == ""), "null key: customer_id"
        )
        .when(F.col("updated_at").isNull(), "unparseable updated_at")
        .when(~F.col("op").isin("I", "U", "D") | F.col("op").isNull(), "unknown op")
    )
    flagged = typed.withColumn("_reason", reason)
    changes = flagged.where(F.col("_reason").isNull()).select(
        "customer_id", *ATTRIBUTES, "op", "updated_at"
    )
    bad = flagged.where(F.col("_reason").isNotNull())
    raw_columns = ["customer_id", *ATTRIBUTES, "op"]
    rejected = to_quarantine(
        bad,
        stage=JOB,
        reason=F.col("_reason"),
        source=F.col("_source_file"),
        record=F.to_json(
            F.struct(*[F.col(c) for c in raw_columns], F.col("_raw_updated_at").alias("updated_at"))
        ),
        batch_id=batch_id,
    )
    return CustomerChanges(changes=changes, rejected=rejected)


def _apply(ctx: JobContext[Config], inc: Increment) -> None:
    """One increment of bronze rows: type, quarantine, apply SCD2."""
    cfg = ctx.config
    bronze = inc.df
    out = transform(bronze, batch_id=ctx.batch_id)
    changes = out.changes.persist()
    try:
        n_in = bronze.count()
        n_ok = changes.count()
        n_bad = out.rejected.count()
        ctx.result.check_reconciled(rows_in=n_in, accepted=n_ok, quarantined=n_bad)
        target = ctx.output_path(cfg.target_table)
        scd = apply_scd2(inc.spark, target, changes, SPEC, txn=inc.identity(cfg.target_table))
    finally:
        changes.unpersist()
    n_scd_bad = int(scd.metrics.get("quarantined", 0))
    rejected = out.rejected
    if n_scd_bad:
        rejected = rejected.unionByName(_scd2_rejects(scd.quarantine, cfg, ctx.batch_id))
    new_rejects = 0
    if n_bad or n_scd_bad:
        new_rejects = write_quarantine(
            inc.spark,
            rejected,
            ctx.output_path(cfg.quarantine_table),
            writes=inc,
            table=cfg.quarantine_table,
        )
    written = int(scd.metrics.get("inserted", 0)) + int(scd.metrics.get("closed", 0))
    result = ctx.result
    result.rows_in += n_in
    result.rows_quarantined += n_bad + n_scd_bad
    result.rows_written += written
    totals = result.details.setdefault("scd2", {})
    for key, value in scd.metrics.items():
        totals[key] = totals.get(key, 0) + int(value)
    result.details["new_quarantine_rows"] = (
        result.details.get("new_quarantine_rows", 0) + new_rejects
    )
    inc.rows_read, inc.rows_written = n_in, written


def run(ctx: JobContext[Config]) -> None:
    cfg = ctx.config
    ctx.stream_table(cfg.source_table, partial(_apply, ctx))
    target = ctx.output_path(cfg.target_table)
    if is_delta_table(ctx.spark, target):
        # SCD2 invariants as Delta CHECK constraints (tables.<target>.quality; added once).
        ctx.result.details["constraints"] = apply_constraints(
            ctx.spark, target, ctx.settings.tables[cfg.target_table].quality, table=cfg.target_table
        )


def _scd2_rejects(q: DataFrame, cfg: Config, batch_id: str) -> DataFrame:
    """Rows the SCD2 engine refused (conflicts), in the quarantine shape."""
    return to_quarantine(
        q,
        stage=JOB,
        reason=q["reason"],
        source=F.lit(cfg.source_table),
        record=F.to_json(F.struct(*[q[c] for c in q.columns if c != "reason"])),
        batch_id=batch_id,
    )
