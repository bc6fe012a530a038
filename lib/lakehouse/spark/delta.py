"""Small helpers over Delta's own APIs (DeltaTable, history, MERGE)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lakehouse.spark.sql import quote_identifier

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakehouse.writes.idempotency import BatchWrites

__all__ = ["insert_new_rows", "is_delta_table", "last_operation_metrics", "table_version"]


def is_delta_table(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, path))


def table_version(spark: SparkSession, path: str) -> int | None:
    """The latest Delta version of the table at ``path`` (None if there is no table)."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    row = DeltaTable.forPath(spark, path).history(1).select("version").first()
    return None if row is None else int(row["version"])


def last_operation_metrics(spark: SparkSession, path: str) -> dict[str, Any]:
    """``operationMetrics`` of the latest commit (numbers as ints where they parse)."""
    from delta.tables import DeltaTable

    row = (
        DeltaTable.forPath(spark, path)
        .history(1)
        .select("version", "operation", "operationMetrics")
        .first()
    )
    if row is None:
        return {}
    metrics: dict[str, Any] = {"version": int(row["version"]), "operation": row["operation"]}
    for key, value in (row["operationMetrics"] or {}).items():
        try:
            metrics[key] = int(value)
        except (TypeError, ValueError):
            metrics[key] = value
    return metrics


def insert_new_rows(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    keys: Sequence[str],
    *,
    partition_by: Sequence[str] = (),
    writes: BatchWrites | None = None,
    table: str | None = None,
) -> int:
    """Insert the rows of ``df`` whose ``keys`` are not in the table yet; return how many.

    Creates the table from ``df`` when it does not exist. Re-running with the same rows
    inserts nothing, so callers are idempotent. With ``writes`` (and the table's config
    name ``table``), the write carries the batch's transaction identity and is retried on
    Delta commit conflicts.
    """
    from delta.tables import DeltaTable

    before = table_version(spark, path)

    def write() -> None:
        if not DeltaTable.isDeltaTable(spark, path):
            writer = df.write.format("delta").mode("errorifexists")
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.save(path)
            return
        cond = " AND ".join(f"t.{quote_identifier(k)} <=> s.{quote_identifier(k)}" for k in keys)
        target = DeltaTable.forPath(spark, path)
        target.alias("t").merge(df.alias("s"), cond).whenNotMatchedInsertAll().execute()

    if writes is None:
        write()
    elif table is None:
        raise ValueError("insert_new_rows: pass table= (its config name) with writes=")
    else:
        writes.run(spark, table, write)
    metrics = last_operation_metrics(spark, path)
    if not metrics or metrics.get("version") == before:
        return 0  # nothing new, or the batch's write had already committed
    if before is None:
        return int(metrics.get("numOutputRows", 0))
    return int(metrics.get("numTargetRowsInserted", 0))
