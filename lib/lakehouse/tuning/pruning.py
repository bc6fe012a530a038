"""Partition pruning that is verified, not hoped for.

* :class:`PartitionRange` / :func:`read_partitions` build a partition filter from a range
  of any partition column (typically a date) and read only those partitions.
* :func:`scan_stats` executes a DataFrame and reads what the scan *did* from Spark's own
  scan-node metrics (``numFiles``, ``numPartitions``, ``filesSize``) on the executed plan,
  walking through ``AdaptiveSparkPlanExec.executedPlan`` and each query stage, and adds the
  table totals from the Delta log: ``{files_read, files_total, partitions_read,
  partitions_total, bytes_read}`` (the shape of ``JobResult.reads``).
* :func:`check_pruning` is the guard: when a query that declares a partition range reads
  partitions outside it, it warns or fails (per ``TableSettings.pruning_guard``) naming the
  table and the filter. On an unpartitioned (plain or liquid-clustered) table it checks
  Delta's data skipping the same way: the files read against :func:`files_in_range`.
* :func:`dynamic_pruning_filters` lists the dynamic-partition-pruning filters of the scans.

What prunes on Spark 4.1 (measured, see docs/performance.md): any deterministic predicate on
the partition columns alone, even through functions; a Python UDF over the partition column
or an ``OR`` mixing it with a data column does not.

Examples
--------
>>> rng = PartitionRange("order_date", "2025-01-01", "2025-01-07")
>>> rng.describe()
"order_date BETWEEN '2025-01-01' AND '2025-01-07'"
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.errors import LakehouseError
from lakehouse.spark.sql import validate_identifier

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "PartitionPruningError",
    "PartitionRange",
    "ReadStats",
    "ScanMetrics",
    "check_pruning",
    "dynamic_pruning_filters",
    "executed_plan",
    "files_in_range",
    "iter_plan_nodes",
    "partition_values",
    "read_partitions",
    "read_report",
    "scan_metrics",
    "scan_stats",
    "table_totals",
]

log = logging.getLogger(__name__)

GuardPolicy = Literal["off", "warn", "fail"]
RangeValue = str | int | dt.date


class PartitionPruningError(LakehouseError, RuntimeError):
    """A query that declared a partition range read partitions outside it."""


@dataclass(frozen=True)
class PartitionRange:
    """An inclusive range ``start <= column <= end`` over one partition column.

    Examples
    --------
    >>> PartitionRange("d", dt.date(2025, 1, 1), dt.date(2025, 1, 7)).describe()
    "d BETWEEN '2025-01-01' AND '2025-01-07'"
    >>> PartitionRange("d", "2025-02-01", "2025-01-01")
    Traceback (most recent call last):
    ...
    ValueError: partition range on 'd' is empty: start '2025-02-01' > end '2025-01-01'
    """

    column: str
    start: RangeValue
    end: RangeValue

    def __post_init__(self) -> None:
        validate_identifier(self.column)
        if type(self.start) is type(self.end) and self.start > self.end:  # type: ignore[operator]
            raise ValueError(
                f"partition range on {self.column!r} is empty: "
                f"start {_show(self.start)} > end {_show(self.end)}"
            )

    @classmethod
    def days(cls, column: str, start: dt.date, days: int) -> PartitionRange:
        """``days`` consecutive days from ``start`` (inclusive).

        Examples
        --------
        >>> PartitionRange.days("d", dt.date(2025, 1, 1), 7).end
        datetime.date(2025, 1, 7)
        """
        if days < 1:
            raise ValueError(f"days must be >= 1; found {days}")
        return cls(column, start, start + dt.timedelta(days=days - 1))

    def filter(self) -> Column:
        """The predicate as a Column (values as literals, never spliced into SQL)."""
        from pyspark.sql import functions as F

        return F.col(self.column).between(F.lit(self.start), F.lit(self.end))

    def describe(self) -> str:
        return f"{self.column} BETWEEN {_show(self.start)} AND {_show(self.end)}"


def _show(value: RangeValue) -> str:
    return str(value) if isinstance(value, int) else f"'{value}'"


def read_partitions(spark: SparkSession, path: str, rng: PartitionRange) -> DataFrame:
    """Read the Delta table at ``path`` restricted to the rows in ``rng``.

    On a partitioned table ``rng.column`` must be a partition column (partition pruning).
    On an unpartitioned table (plain or liquid-clustered) it may be any column: Delta's
    data skipping then reads only the files whose min/max statistics overlap the range
    (:func:`files_in_range`).

    Raises
    ------
    ValueError
        If the table is partitioned and ``rng.column`` is not a partition column, or the
        table has no such column.
    """
    partition_columns = _partition_columns(spark, path)
    df = spark.read.format("delta").load(path)
    if partition_columns and rng.column not in partition_columns:
        raise ValueError(
            f"{path}: {rng.column!r} is not a partition column; "
            f"partition columns: {partition_columns}"
        )
    if rng.column not in df.columns:
        raise ValueError(f"{path}: no column {rng.column!r}; columns: {df.columns}")
    return df.where(rng.filter())


# --------------------------------------------------------------------------- plans


def executed_plan(df: DataFrame, *, execute: bool = True) -> Any:
    """The executed physical plan of ``df`` (a py4j ``SparkPlan``), run once if ``execute``.

    Running the plan object itself (not a new action on ``df``) fills the metrics of the
    very nodes this returns, without collecting rows to the driver.
    """
    plan = df._jdf.queryExecution().executedPlan()
    if execute:
        plan.execute().count()
    return plan


def iter_plan_nodes(plan: Any, *, subqueries: bool = True) -> Iterator[Any]:
    """Every node of a physical plan, through adaptive plans, query stages and subqueries."""
    stack = [plan]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        ident = int(node.id()) if hasattr(node, "id") else id(node)
        if ident in seen:
            continue
        seen.add(ident)
        yield node
        name = node.getClass().getSimpleName()
        if name == "AdaptiveSparkPlanExec":
            stack.append(node.executedPlan())
            continue
        if name.endswith("QueryStageExec"):
            stack.append(node.plan())
            continue
        children = node.children().iterator()
        while children.hasNext():
            stack.append(children.next())
        if subqueries:
            subs = node.subqueries().iterator()
            while subs.hasNext():
                stack.append(subs.next())


@dataclass(frozen=True)
class ScanMetrics:
    """What one file-scan node read, from its SQL metrics."""

    path: str
    files: int
    partitions: int | None
    bytes: int
    partition_filters: list[str] = field(default_factory=list)
    data_filters: list[str] = field(default_factory=list)


def _norm(path: str) -> str:
    path = path.rstrip("/")
    for prefix in ("file://", "file:"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def _seq(seq: Any) -> list[Any]:
    out = []
    it = seq.iterator()
    while it.hasNext():
        out.append(it.next())
    return out


def scan_metrics(df: DataFrame, *, execute: bool = True) -> list[ScanMetrics]:
    """Run ``df`` and return the metrics of every file scan in its executed plan."""
    plan = executed_plan(df, execute=execute)
    scans = []
    for node in iter_plan_nodes(plan):
        if node.getClass().getSimpleName() != "FileSourceScanExec":
            continue
        metrics = node.metrics()

        def value(key: str, metrics: Any = metrics) -> int | None:
            opt = metrics.get(key)
            return int(opt.get().value()) if opt.isDefined() else None

        roots = _seq(node.relation().location().rootPaths())
        scans.append(
            ScanMetrics(
                path=_norm(str(roots[0].toString())) if roots else "",
                files=value("numFiles") or 0,
                partitions=value("numPartitions"),
                bytes=value("filesSize") or 0,
                partition_filters=[str(e.sql()) for e in _seq(node.partitionFilters())],
                data_filters=[str(e.sql()) for e in _seq(node.dataFilters())],
            )
        )
    return scans


def dynamic_pruning_filters(df: DataFrame, *, execute: bool = True) -> list[str]:
    """Partition filters of ``df``'s scans that are dynamic-partition-pruning expressions."""
    plan = executed_plan(df, execute=execute)
    found = []
    for node in iter_plan_nodes(plan):
        if node.getClass().getSimpleName() != "FileSourceScanExec":
            continue
        for expr in _seq(node.partitionFilters()):
            text = str(expr.toString())
            if "dynamicpruning" in text.lower():
                found.append(text)
    return found


# --------------------------------------------------------------------------- Delta log


def _snapshot(spark: SparkSession, path: str) -> Any:
    jvm = spark.sparkContext._jvm
    if jvm is None:  # pragma: no cover - a classic session always has a JVM
        raise RuntimeError("no JVM behind this SparkSession (Spark Connect is not supported)")
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    defaults = [getattr(delta_log, f"update$default${i}")() for i in (1, 2, 3)]
    return delta_log.update(*defaults)


def _partition_columns(spark: SparkSession, path: str) -> list[str]:
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).detail().select("partitionColumns").first()
    return [] if row is None else list(row["partitionColumns"])


def partition_values(spark: SparkSession, path: str) -> DataFrame:
    """The distinct partition values of the table's current snapshot, typed like the table.

    Read from the Delta log (the ``add`` actions), not from the data files.
    """
    from pyspark.sql import DataFrame as PyDataFrame
    from pyspark.sql import functions as F

    columns = _partition_columns(spark, path)
    schema = spark.read.format("delta").load(path).schema
    files = PyDataFrame(_snapshot(spark, path).allFiles().toDF(), spark)
    return files.select(
        *[F.col("partitionValues")[c].cast(schema[c].dataType).alias(c) for c in columns]
    ).distinct()


def files_in_range(spark: SparkSession, path: str, declared: PartitionRange) -> int:
    """How many files of the table's snapshot may hold rows of ``declared``.

    For an unpartitioned (plain or liquid-clustered) table: the files whose ``minValues`` /
    ``maxValues`` statistics of the column overlap the range, read from the Delta log's
    ``add`` actions, plus the files without statistics for it (Delta cannot skip those).
    That is the most a filter on the bare column makes Delta's data skipping read.
    """
    from pyspark.sql import DataFrame as PyDataFrame
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructField, StructType

    column = declared.column
    kind = spark.read.format("delta").load(path).schema[column].dataType
    bounds = StructType([StructField(column, kind)])
    stats = StructType([StructField("minValues", bounds), StructField("maxValues", bounds)])
    files = PyDataFrame(_snapshot(spark, path).allFiles().toDF(), spark)
    parsed = files.select(F.from_json("stats", stats).alias("s"))
    low, high = F.col("s.minValues")[column], F.col("s.maxValues")[column]
    inside = (low <= F.lit(declared.end).cast(kind)) & (high >= F.lit(declared.start).cast(kind))
    return parsed.where(low.isNull() | high.isNull() | inside).count()


def table_totals(spark: SparkSession, path: str) -> dict[str, int]:
    """``files_total`` and ``partitions_total`` of the table's current snapshot."""
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).detail().select("numFiles", "partitionColumns").first()
    files = 0 if row is None else int(row["numFiles"])
    partitioned = row is not None and bool(row["partitionColumns"])
    partitions = partition_values(spark, path).count() if partitioned else 0
    return {"files_total": files, "partitions_total": partitions}


# --------------------------------------------------------------------------- stats + guard


@dataclass
class ReadStats:
    """Files and partitions one query read from one table, against the table's totals."""

    path: str
    files_read: int
    files_total: int
    partitions_read: int
    partitions_total: int
    bytes_read: int
    partition_filters: list[str] = field(default_factory=list)

    def as_report(self) -> dict[str, Any]:
        """The dict stored in ``JobResult.reads[table]``."""
        out = asdict(self)
        out.pop("path")
        return out


def scan_stats(df: DataFrame, *, path: str | None = None, execute: bool = True) -> ReadStats:
    """Execute ``df`` and report what its scan of the Delta table at ``path`` read.

    Parameters
    ----------
    df:
        The query; it is run once (rows are not collected).
    path:
        The table to report on; may be omitted when the plan scans exactly one table.
        Several scans of the same table are summed.

    Returns
    -------
    ReadStats
        ``files_read`` / ``partitions_read`` / ``bytes_read`` from the scan nodes'
        metrics, ``files_total`` / ``partitions_total`` from the Delta log.
    """
    scans = scan_metrics(df, execute=execute)
    paths = sorted({s.path for s in scans})
    if path is None:
        if len(paths) != 1:
            raise ValueError(f"the plan scans {len(paths)} tables {paths}; pass path=")
        target = paths[0]
    else:
        target = _norm(path)
    mine = [s for s in scans if s.path == target]
    if not mine:
        raise ValueError(f"the plan does not scan {target!r}; it scans {paths}")
    spark = df.sparkSession
    totals = table_totals(spark, target)
    return ReadStats(
        path=target,
        files_read=sum(s.files for s in mine),
        files_total=totals["files_total"],
        partitions_read=sum(s.partitions or 0 for s in mine),
        partitions_total=totals["partitions_total"],
        bytes_read=sum(s.bytes for s in mine),
        partition_filters=[f for s in mine for f in s.partition_filters],
    )


def read_report(df: DataFrame, *, path: str) -> dict[str, Any]:
    """``JobResult.reads`` entry for a job's read ``df`` of the table at ``path``.

    Runs ``df`` with no columns selected (its filters, partition pruning and data skipping
    intact, no column data decoded) and returns files/partitions read against the totals.
    """
    return scan_stats(df.select(), path=path).as_report()


def _filter_sql(df: DataFrame) -> str:
    """The query's filter conditions as written (from the analyzed logical plan)."""
    conditions: list[str] = []
    stack = [df._jdf.queryExecution().analyzed()]
    while stack:
        node = stack.pop()
        if node.getClass().getSimpleName() == "Filter":
            conditions.append(str(node.condition().sql()))
        stack.extend(_seq(node.children()))
    return " AND ".join(reversed(conditions)) or "<no filter>"


def check_pruning(
    df: DataFrame,
    *,
    table: str,
    path: str,
    declared: PartitionRange,
    policy: GuardPolicy = "fail",
    stats: ReadStats | None = None,
) -> ReadStats:
    """Guard: the query ``df`` declared ``declared``; did its scan stay inside it?

    When ``declared.column`` is a partition column, the number of partitions the scan read
    (scan metrics) is compared with the number of the table's partitions inside the
    declared range (Delta log). Otherwise (an unpartitioned or liquid-clustered table) the
    files the scan read are compared with :func:`files_in_range`, the files whose min/max
    statistics overlap the range. Reading more means the filter did not prune or skip (a
    UDF, a cast, an ``OR`` with another column ...).

    Parameters
    ----------
    policy:
        ``"fail"`` raises :class:`PartitionPruningError`, ``"warn"`` logs a warning,
        ``"off"`` only measures.
    stats:
        Already measured :func:`scan_stats` of ``df`` (saves running it again).

    Returns
    -------
    ReadStats
        What the scan read (for ``JobResult.reads``).
    """
    if policy not in ("off", "warn", "fail"):
        raise ValueError(f"policy must be 'off', 'warn' or 'fail'; found {policy!r}")
    from pyspark.sql import functions as F

    measured = stats if stats is not None else scan_stats(df, path=path)
    if policy == "off":
        return measured
    spark = df.sparkSession
    message = None
    if declared.column in _partition_columns(spark, path):
        expected = (
            partition_values(spark, path)
            .where(F.col(declared.column).between(F.lit(declared.start), F.lit(declared.end)))
            .count()
        )
        if measured.partitions_read > expected:
            message = (
                f"partition guard: table {table!r} declares {declared.describe()} "
                f"({expected} partitions) but the query read {measured.partitions_read} of "
                f"{measured.partitions_total} partitions; filter {_filter_sql(df)} does not "
                f"prune (compare the bare partition column {declared.column!r}: "
                "no UDF, no OR with data columns)"
            )
    else:
        expected = files_in_range(spark, path, declared)
        if measured.files_read > expected:
            message = (
                f"partition guard: table {table!r} declares {declared.describe()} "
                f"({expected} files whose min/max statistics overlap it) but the query read "
                f"{measured.files_read} of {measured.files_total} files; filter "
                f"{_filter_sql(df)} does not skip files (compare the bare column "
                f"{declared.column!r}: no UDF, no OR with other columns)"
            )
    if message is not None:
        if policy == "fail":
            raise PartitionPruningError(message)
        log.warning(message)
    return measured
