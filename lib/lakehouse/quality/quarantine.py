"""Quarantine tables: every rejected row is kept with the stage and a reason.

All quarantine tables share one schema so they can be unioned and queried together:
``stage`` (job name), ``source`` (file or table the row came from), ``reason``,
``record`` (the raw line or the row as JSON), ``batch_id``, ``quarantined_at`` and
``row_hash`` (identity used to keep re-runs from inserting the same rejection twice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from lakehouse.spark.delta import insert_new_rows

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from lakehouse.writes.idempotency import Writes

__all__ = ["QUARANTINE_COLUMNS", "to_quarantine", "write_quarantine"]

QUARANTINE_COLUMNS = (
    "stage",
    "source",
    "reason",
    "record",
    "batch_id",
    "quarantined_at",
    "row_hash",
)


def to_quarantine(
    df: DataFrame,
    *,
    stage: str,
    reason: Column,
    source: Column,
    record: Column | None = None,
    batch_id: str,
) -> DataFrame:
    """Project rejected rows of ``df`` onto the quarantine schema.

    ``record`` defaults to the whole row as JSON. ``row_hash`` hashes stage, source,
    reason and record, so the same rejected input maps to the same quarantine row.
    """
    rec = record if record is not None else F.to_json(F.struct(*[F.col(c) for c in df.columns]))
    out = df.select(
        F.lit(stage).alias("stage"),
        source.cast("string").alias("source"),
        reason.cast("string").alias("reason"),
        rec.cast("string").alias("record"),
        F.lit(batch_id).alias("batch_id"),
        F.current_timestamp().alias("quarantined_at"),
    )
    return out.withColumn(
        "row_hash",
        F.sha2(
            F.concat_ws(
                "\u0001",
                F.col("stage"),
                F.coalesce(F.col("source"), F.lit("")),
                F.col("reason"),
                F.coalesce(F.col("record"), F.lit("")),
            ),
            256,
        ),
    )


def write_quarantine(
    spark: SparkSession, rejected: DataFrame, path: str, *, writes: Writes, table: str
) -> int:
    """Insert the quarantine rows of ``rejected`` not already in the table at ``path``
    (by ``row_hash``, so a replayed rejection is stored once), under ``writes``' identity
    for ``table``; return how many were inserted."""
    return insert_new_rows(spark, rejected, path, ["row_hash"], writes=writes, table=table)
