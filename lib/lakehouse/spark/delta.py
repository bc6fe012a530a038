"""The one handle on "a Delta table at a path (or a catalog name)", and helpers over it.

:class:`DeltaTableRef` says where a table is and answers what callers ask of it: does it
exist, its latest version (from the snapshot Delta loaded, no Spark job), its properties,
what the last commit did; it reads, creates and opens it as a ``DeltaTable``. The module
functions (:func:`is_delta_table`, :func:`table_version`, :func:`last_operation_metrics`,
:func:`insert_new_rows`) are the same questions for a path, kept for the jobs that call them.

Examples
--------
With a live session ``spark`` (not run as a doctest):

>>> DeltaTableRef.parse(spark, "s3://bucket/silver/dim_customer").is_path  # doctest: +SKIP
True
>>> DeltaTableRef.parse(spark, "silver.dim_customer").is_path  # doctest: +SKIP
False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakehouse.spark.sql import quote_identifier, validate_identifier

if TYPE_CHECKING:
    from delta.tables import DeltaTable
    from pyspark.sql import DataFrame, DataFrameWriter, SparkSession

    from lakehouse.writes.idempotency import Writes

__all__ = [
    "DeltaTableRef",
    "append_writer",
    "event_log_location",
    "insert_new_rows",
    "is_delta_table",
    "last_operation_metrics",
    "table_version",
]


@dataclass(frozen=True)
class DeltaTableRef:
    """A Delta table named by a path or a catalog name; nothing is read until asked.

    Parameters
    ----------
    spark
        The session.
    location
        The table's path (``is_path``) or its catalog name (``db.table``).
    is_path
        Whether ``location`` is a path.
    """

    spark: SparkSession
    location: str
    is_path: bool = True

    @classmethod
    def for_path(cls, spark: SparkSession, path: str) -> DeltaTableRef:
        """The table at ``path``."""
        return cls(spark, path, is_path=True)

    @classmethod
    def parse(cls, spark: SparkSession, target: str) -> DeltaTableRef:
        """A path if ``target`` contains ``/`` or ``:`` (``s3://...``), else a table name."""
        return cls(spark, target, is_path="/" in target or ":" in target)

    def exists(self) -> bool:
        """Whether there is a Delta table there.

        Delta caches a table's log per path, and ``isDeltaTable`` does not refresh it: looked
        at while another process had created ``_delta_log`` but not committed yet, the path
        would stay "no table" in this session. A path with a ``_delta_log`` is therefore
        asked again after a read, which refreshes the log."""
        from delta.tables import DeltaTable
        from pyspark.errors import AnalysisException

        from lakehouse.spark.fs import path_exists

        if not self.is_path:
            return bool(self.spark.catalog.tableExists(self.location))
        if DeltaTable.isDeltaTable(self.spark, self.location):
            return True
        if not path_exists(self.spark, f"{self.location}/_delta_log"):
            return False
        try:
            _ = self.spark.read.format("delta").load(self.location).schema
        except AnalysisException:
            return False
        return bool(DeltaTable.isDeltaTable(self.spark, self.location))

    def delta_table(self) -> DeltaTable:
        """Delta's own handle (for MERGE builders, history, detail)."""
        from delta.tables import DeltaTable

        if self.is_path:
            return DeltaTable.forPath(self.spark, self.location)
        return DeltaTable.forName(self.spark, self.location)

    def version(self) -> int | None:
        """The latest committed version, or None if there is no table.

        Read from the snapshot Delta loaded to open the table (its JVM ``DeltaLog``), which
        costs no Spark job; ``history(1)`` (a job) where that handle is not reachable."""
        if not self.exists():
            return None
        dt = self.delta_table()
        snapshot = _loaded_snapshot(dt)
        if snapshot is not None:
            return int(snapshot.version())
        row = dt.history(1).select("version").first()
        return None if row is None else int(row["version"])

    def version_and_id(self) -> tuple[int, str] | None:
        """The latest committed version and the table's id (Delta's ``reservoirId``, new
        for a table dropped and created again), or None if there is no table. From the
        loaded snapshot like :meth:`version`, else from ``history(1)`` and ``detail()``."""
        if not self.exists():
            return None
        dt = self.delta_table()
        snapshot = _loaded_snapshot(dt)
        if snapshot is not None:
            return int(snapshot.version()), str(snapshot.metadata().id())
        version = dt.history(1).select("version").first()
        detail = dt.detail().select("id").first()
        if version is None or detail is None:
            return None
        return int(version["version"]), str(detail["id"])

    def properties(self) -> dict[str, str]:
        """The table's properties (``TBLPROPERTIES``)."""
        row = self.delta_table().detail().select("properties").first()
        return dict(row["properties"] or {}) if row is not None else {}

    def last_operation_metrics(self) -> dict[str, Any]:
        """``version``, ``operation`` and ``operationMetrics`` of the latest commit (numbers
        as ints where they parse); empty if the history is."""
        row = (
            self.delta_table().history(1).select("version", "operation", "operationMetrics").first()
        )
        return {} if row is None else _commit_metrics(row)

    def commits_since(self, version: int | None) -> list[dict[str, Any]]:
        """As :meth:`last_operation_metrics`, for every commit after ``version`` (all when
        None), oldest first; empty if there is no table."""
        if not self.exists():
            return []
        history = self.delta_table().history().select("version", "operation", "operationMetrics")
        if version is not None:
            history = history.where(history["version"] > version)
        return [_commit_metrics(row) for row in history.orderBy("version").collect()]

    def read(self, version: int | None = None) -> DataFrame:
        """The table (at ``version`` if given) as a DataFrame."""
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if self.is_path:
            return reader.load(self.location)
        if version is None:
            return self.spark.read.table(self.location)
        return reader.table(self.location)

    def create(self, df: DataFrame, *, partition_by: Sequence[str] = ()) -> None:
        """Write ``df`` as the new table; fails if one exists."""
        writer = df.write.format("delta").mode("errorifexists")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if self.is_path:
            writer.save(self.location)
            return
        for part in self.location.split("."):
            validate_identifier(part)
        writer.saveAsTable(self.location)


def event_log_location(target: str) -> str:
    """Where the CDC event log of ``target`` (a path or a catalog name) lives
    (:mod:`lakehouse.scd2.log`): ``<path>/_cdc_log``, or the table ``<name>__cdc_log``.

    Examples
    --------
    >>> event_log_location("/data/customers/"), event_log_location("db.customers")
    ('/data/customers/_cdc_log', 'db.customers__cdc_log')
    """
    if "/" in target or ":" in target:
        return target.rstrip("/") + "/_cdc_log"
    return f"{target}__cdc_log"


def append_writer(df: DataFrame, *, partition_by: Sequence[str] = ()) -> DataFrameWriter:
    """A Delta append of ``df`` that writes a few files per write, not one per task.

    Partitioned: repartitioned by the partition columns, so each partition gets one file.
    Unpartitioned (plain or liquid-clustered): Delta's optimized write
    (``optimizeWrite``), which shuffles the rows into bins of
    ``spark.databricks.delta.optimizeWrite.binSize`` before writing.
    """
    if partition_by:
        out = df.repartition(*partition_by).write.format("delta").mode("append")
        return out.partitionBy(*partition_by)
    return df.write.format("delta").mode("append").option("optimizeWrite", "true")


def _commit_metrics(row: Any) -> dict[str, Any]:
    metrics: dict[str, Any] = {"version": int(row["version"]), "operation": row["operation"]}
    for key, value in (row["operationMetrics"] or {}).items():
        try:
            metrics[key] = int(value)
        except (TypeError, ValueError):
            metrics[key] = value
    return metrics


def _loaded_snapshot(dt: DeltaTable) -> Any:
    """The JVM snapshot Delta loaded to open ``dt``, or None where that Delta-internal
    handle is not reachable (callers then use the public API)."""
    from py4j.protocol import Py4JError

    try:
        return dt._jdt.deltaLog().unsafeVolatileSnapshot()
    except (AttributeError, Py4JError):
        return None


def is_delta_table(spark: SparkSession, path: str) -> bool:
    """Whether there is a Delta table at ``path``."""
    return DeltaTableRef.for_path(spark, path).exists()


def table_version(spark: SparkSession, path: str) -> int | None:
    """The latest Delta version of the table at ``path`` (None if there is no table)."""
    return DeltaTableRef.for_path(spark, path).version()


def last_operation_metrics(spark: SparkSession, path: str) -> dict[str, Any]:
    """``operationMetrics`` of the latest commit (numbers as ints where they parse)."""
    return DeltaTableRef.for_path(spark, path).last_operation_metrics()


def insert_new_rows(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    keys: Sequence[str],
    *,
    partition_by: Sequence[str] = (),
    writes: Writes | None = None,
    table: str | None = None,
) -> int:
    """Insert the rows of ``df`` whose ``keys`` are not in the table yet; return how many.

    Creates the table from ``df`` when it does not exist. Re-running with the same rows
    inserts nothing, so callers are idempotent. With ``writes`` (and the table's config
    name ``table``), the write carries the batch's transaction identity and is retried on
    Delta commit conflicts.
    """
    ref = DeltaTableRef.for_path(spark, path)
    before = ref.version()

    def write() -> None:
        if not ref.exists():
            ref.create(df, partition_by=partition_by)
            return
        cond = " AND ".join(f"t.{quote_identifier(k)} <=> s.{quote_identifier(k)}" for k in keys)
        target = ref.delta_table()
        target.alias("t").merge(df.alias("s"), cond).whenNotMatchedInsertAll().execute()

    if writes is None:
        write()
    elif table is None:
        raise ValueError("insert_new_rows: pass table= (its config name) with writes=")
    else:
        writes.run(spark, table, write)
    metrics = ref.last_operation_metrics()
    if not metrics or metrics.get("version") == before:
        return 0  # nothing new, or the batch's write had already committed
    if before is None:
        return int(metrics.get("numOutputRows", 0))
    return int(metrics.get("numTargetRowsInserted", 0))
