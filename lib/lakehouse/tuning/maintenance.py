"""Table layout and maintenance on Delta's own commands: properties, OPTIMIZE, Z-order,
liquid clustering, VACUUM with a retention guard, and a data-skipping explainer.

Layout comes from :class:`lakehouse.config.TableSettings`:

* ``target_file_size`` -> ``spark.databricks.delta.optimize.maxFileSize`` while OPTIMIZE runs
  on that table (open-source Delta 4.2 rejects ``delta.targetFileSize`` as an unknown
  property: ``DELTA_UNKNOWN_CONFIGURATION``; that property is Databricks-only)
* ``data_skipping_stats_columns`` -> ``delta.dataSkippingStatsColumns``
* ``deletion_vectors`` -> ``delta.enableDeletionVectors``
* ``zorder_by`` -> ``OPTIMIZE ... ZORDER BY`` (``DeltaTable.optimize().executeZOrderBy``)
* ``cluster_by`` -> liquid clustering (``ALTER TABLE ... CLUSTER BY``; OPTIMIZE clusters)

Examples
--------
>>> from lakehouse.config import TableSettings, parse_byte_string
>>> t = TableSettings(path="p", layer="gold", target_file_size="128m",
...                   data_skipping_stats_columns=["x", "y"], deletion_vectors=True)
>>> table_properties(t)
{'delta.dataSkippingStatsColumns': 'x,y', 'delta.enableDeletionVectors': 'true'}
>>> optimize_conf(t)
{'spark.databricks.delta.optimize.maxFileSize': '134217728'}
>>> parse_interval_hours("interval 7 days")
168.0
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.config import TableSettings, parse_byte_string
from lakehouse.errors import LakehouseError
from lakehouse.spark.session import session_conf
from lakehouse.spark.sql import (
    delta_path_identifier,
    property_literal,
    quote_identifier,
    sql_string_literal,
    validate_identifier,
)
from lakehouse.tuning.pruning import scan_stats

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "DEFAULT_RETENTION_HOURS",
    "RETENTION_PROPERTY",
    "SAFETY_RETENTION_PROPERTY",
    "OptimizeReport",
    "SkippingReport",
    "VacuumRetentionError",
    "apply_layout",
    "changed_partitions",
    "changes_since_optimize",
    "check_retention",
    "current_retention_hours",
    "explain_skipping",
    "files_added_since_optimize",
    "optimize",
    "optimize_conf",
    "parse_interval_hours",
    "partition_predicate",
    "retention_interval",
    "safety_retention_hours",
    "set_retention",
    "table_properties",
    "vacuum",
]

log = logging.getLogger(__name__)

#: The session setting bounding the files OPTIMIZE writes (Delta default 1 GiB).
OPTIMIZE_MAX_FILE_SIZE = "spark.databricks.delta.optimize.maxFileSize"
MDC_RANGE_IDS = "spark.databricks.io.skipping.mdc.rangeId.max"
MDC_ADD_NOISE = "spark.databricks.io.skipping.mdc.addNoise"
#: Tasks Spark (and Delta's VACUUM) list a directory tree with.
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
#: Delta's default ``delta.deletedFileRetentionDuration`` (``interval 1 week``).
DEFAULT_RETENTION_HOURS = 168.0
#: The table property VACUUM takes its retention from.
RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"
#: Where :func:`vacuum` records the table's safety retention when it first sets its own.
SAFETY_RETENTION_PROPERTY = "lakehouse.safetyRetentionDuration"

_UNIT_HOURS = {
    "second": 1 / 3600,
    "minute": 1 / 60,
    "hour": 1.0,
    "day": 24.0,
    "week": 168.0,
}
_INTERVAL = re.compile(
    r"(?i)\s*(?:interval\s+)?(\d+(?:\.\d+)?)\s+(second|minute|hour|day|week)s?\s*"
)


class VacuumRetentionError(LakehouseError, ValueError):
    """A VACUUM retention below the table's safety retention without an explicit override."""


def table_properties(table: TableSettings) -> dict[str, str]:
    """The Delta table properties ``table``'s layout asks for (only the ones it sets)."""
    props: dict[str, str] = {}
    if table.data_skipping_stats_columns:
        props["delta.dataSkippingStatsColumns"] = ",".join(table.data_skipping_stats_columns)
    if table.deletion_vectors is not None:
        props["delta.enableDeletionVectors"] = "true" if table.deletion_vectors else "false"
    return props


def optimize_conf(table: TableSettings) -> dict[str, str]:
    """Session settings OPTIMIZE of ``table`` runs with: its target file size in bytes and,
    with ``zorder_ranges``, the Z-order range buckets per column without the noise byte
    (so the curve has ``zorder_ranges ** len(zorder_by)`` cells and file cuts fall on
    cell boundaries instead of straddling them)."""
    conf = {}
    if table.target_file_size is not None:
        conf[OPTIMIZE_MAX_FILE_SIZE] = str(parse_byte_string(table.target_file_size))
    if table.zorder_ranges is not None:
        conf[MDC_RANGE_IDS] = str(table.zorder_ranges)
        conf[MDC_ADD_NOISE] = "false"
    return conf


def _detail(spark: SparkSession, path: str) -> dict[str, Any]:
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).detail().first()
    return {} if row is None else row.asDict(recursive=True)


def apply_layout(spark: SparkSession, path: str, table: TableSettings) -> dict[str, Any]:
    """Bring the table at ``path`` to ``table``'s layout; return what changed.

    Sets the table properties that differ and, for ``cluster_by``, switches the table to
    liquid clustering on those columns (``ALTER TABLE ... CLUSTER BY``; Delta allows it on
    unpartitioned tables). Partitioning itself cannot change in place.
    """
    detail = _detail(spark, path)
    current = detail.get("properties") or {}
    wanted = table_properties(table)
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    ident = delta_path_identifier(path)
    if changed:
        assignments = ", ".join(
            f"{property_literal(k)} = {property_literal(v)}" for k, v in changed.items()
        )
        spark.sql(f"ALTER TABLE {ident} SET TBLPROPERTIES ({assignments})")
    out: dict[str, Any] = {"properties": changed}
    clustering = list(detail.get("clusteringColumns") or [])
    if table.cluster_by and clustering != list(table.cluster_by):
        cols = ", ".join(quote_identifier(validate_identifier(c)) for c in table.cluster_by)
        spark.sql(f"ALTER TABLE {ident} CLUSTER BY ({cols})")
        out["cluster_by"] = list(table.cluster_by)
    return out


# --------------------------------------------------------------------------- OPTIMIZE


def _history(spark: SparkSession, path: str) -> list[dict[str, Any]]:
    from delta.tables import DeltaTable

    rows = (
        DeltaTable.forPath(spark, path)
        .history()
        .select("version", "operation", "operationMetrics", "operationParameters")
        .collect()
    )
    return [r.asDict(recursive=True) for r in rows]


def _adds_since_optimize(spark: SparkSession, path: str) -> DataFrame | Literal[False] | None:
    """The ``add`` actions of the Delta commits after the table's last OPTIMIZE.

    ``None`` when there was no OPTIMIZE yet (or the commits are gone): "everything";
    ``False`` when no commit came after it.
    """
    history = _history(spark, path)
    optimized = [h["version"] for h in history if h["operation"] == "OPTIMIZE"]
    if not optimized:
        return None
    last = max(optimized)
    latest = max(h["version"] for h in history)
    versions = list(range(last + 1, latest + 1))
    if not versions:
        return False
    log_dir = path.rstrip("/") + "/_delta_log/"
    files = [f"{log_dir}{v:020d}.json" for v in versions]
    try:
        commits = spark.read.json(files)
    except Exception as exc:  # noqa: BLE001 - cleaned-up log: fall back to the whole table
        log.info("%s: cannot read commits %s (%s); optimizing every partition", path, files, exc)
        return None
    if "add" not in commits.columns:
        return False
    return commits.where("add IS NOT NULL")


def _partitions_of(adds: DataFrame) -> list[dict[str, str | None]]:
    add_type = adds.schema["add"].dataType
    if "partitionValues" not in getattr(add_type, "names", []):
        # unpartitioned: every add has "partitionValues": {}, which JSON inference drops
        return [{}] if adds.limit(1).count() else []
    rows = adds.selectExpr("to_json(add.partitionValues) AS pv").distinct().collect()
    import json

    return sorted(
        (json.loads(r["pv"]) if r["pv"] else {} for r in rows),
        key=lambda d: json.dumps(d, sort_keys=True),
    )


def changes_since_optimize(
    spark: SparkSession, path: str, *, count_files: bool = False
) -> tuple[list[dict[str, str | None]] | None, int | None]:
    """The partitions that received files since the table's last OPTIMIZE and (with
    ``count_files``) how many data files those commits added, from one read of the
    ``add`` actions of the Delta commits after it.

    ``(None, None)`` when there was no OPTIMIZE yet (or the commits are gone), meaning
    "all"; the count is None without ``count_files``.
    """
    adds = _adds_since_optimize(spark, path)
    if adds is None:
        return None, None
    if adds is False:
        return [], 0 if count_files else None
    return _partitions_of(adds), adds.count() if count_files else None


def changed_partitions(spark: SparkSession, path: str) -> list[dict[str, str | None]] | None:
    """Partitions that received files since the table's last OPTIMIZE
    (:func:`changes_since_optimize`; ``None`` = all)."""
    return changes_since_optimize(spark, path)[0]


def files_added_since_optimize(spark: SparkSession, path: str) -> int | None:
    """How many data files the commits after the table's last OPTIMIZE added (``None``:
    never optimized, or the commits are gone)."""
    return changes_since_optimize(spark, path, count_files=True)[1]


def partition_predicate(partitions: Sequence[Mapping[str, str | None]]) -> str:
    """A SQL predicate selecting exactly ``partitions``: identifiers validated and quoted,
    values escaped string literals (:func:`sql_string_literal`); Spark casts them to the
    partition column's type. ``DeltaTable.optimize().where`` only takes a SQL string.

    Examples
    --------
    >>> partition_predicate([{"d": "2025-01-02"}, {"d": None}])
    "(`d` = '2025-01-02') OR (`d` IS NULL)"
    """
    terms = []
    for part in partitions:
        conds = []
        for col, value in sorted(part.items()):
            name = quote_identifier(validate_identifier(col))
            conds.append(
                f"{name} IS NULL" if value is None else f"{name} = {sql_string_literal(value)}"
            )
        terms.append("(" + " AND ".join(conds) + ")" if conds else "TRUE")
    return " OR ".join(terms) if terms else "FALSE"


@dataclass
class OptimizeReport:
    """What one OPTIMIZE did, from its Delta commit metrics."""

    path: str
    mode: str
    files_before: int
    files_after: int
    files_added: int = 0
    files_removed: int = 0
    bytes_added: int = 0
    bytes_removed: int = 0
    partitions: list[dict[str, str | None]] | None = None
    version: int | None = None
    skipped: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def _int(metrics: Mapping[str, Any], key: str) -> int:
    try:
        return int(metrics.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def optimize(
    spark: SparkSession,
    path: str,
    table: TableSettings,
    *,
    partitions: Sequence[Mapping[str, str | None]] | None = None,
) -> OptimizeReport:
    """OPTIMIZE the table per its layout: Z-order, liquid clustering or plain bin-packing.

    Parameters
    ----------
    partitions:
        Restrict to these partitions (partitioned tables only); ``None`` = all.
    """
    from delta.tables import DeltaTable

    if table.cluster_by:
        mode = "cluster"
    elif table.zorder_by:
        mode = "zorder"
    else:
        mode = "compact"
    if partitions is not None and not partitions:
        return OptimizeReport(path, mode, 0, 0, partitions=[], skipped="no changes")
    before = int(_detail(spark, path).get("numFiles") or 0)
    if table.zorder_by:
        columns = set(spark.read.format("delta").load(path).columns)
        missing = sorted(set(table.zorder_by) - columns)
        if missing:
            raise ValueError(
                f"{path}: zorder_by columns {missing} are not in the table; "
                f"columns: {sorted(columns)}"
            )
    builder = DeltaTable.forPath(spark, path).optimize()
    if partitions is not None and not table.cluster_by:
        builder = builder.where(partition_predicate(partitions))
    with session_conf(spark, optimize_conf(table)):
        if mode == "zorder":
            builder.executeZOrderBy(*table.zorder_by)
        else:
            builder.executeCompaction()
    last = _history(spark, path)[0]
    after = int(_detail(spark, path).get("numFiles") or 0)
    if last["operation"] != "OPTIMIZE":
        return OptimizeReport(path, mode, before, after, skipped="nothing to rewrite")
    metrics = last["operationMetrics"] or {}
    return OptimizeReport(
        path=path,
        mode=mode,
        files_before=before,
        files_after=after,
        files_added=_int(metrics, "numAddedFiles"),
        files_removed=_int(metrics, "numRemovedFiles"),
        bytes_added=_int(metrics, "numAddedBytes"),
        bytes_removed=_int(metrics, "numRemovedBytes"),
        partitions=None if partitions is None else [dict(p) for p in partitions],
        version=int(last["version"]),
        metrics=dict(metrics),
    )


# --------------------------------------------------------------------------- VACUUM


def parse_interval_hours(text: str) -> float:
    """Hours in a Delta interval string (``interval 7 days``, ``interval 168 hours``).

    Examples
    --------
    >>> parse_interval_hours("interval 1 week")
    168.0
    >>> parse_interval_hours("2 hours")
    2.0
    """
    match = _INTERVAL.fullmatch(text)
    if match is None:
        raise ValueError(f"not a Delta interval (e.g. 'interval 7 days'): {text!r}")
    return float(match.group(1)) * _UNIT_HOURS[match.group(2).lower()]


def _properties(spark: SparkSession, path: str) -> dict[str, str]:
    return dict(_detail(spark, path).get("properties") or {})


def _hours_property(props: Mapping[str, str], key: str) -> float | None:
    value = props.get(key)
    return None if value is None else parse_interval_hours(value)


def retention_interval(hours: float) -> str:
    """The Delta interval string for ``hours`` (whole hours, else whole seconds).

    Examples
    --------
    >>> retention_interval(24)
    'interval 24 hours'
    >>> retention_interval(0.5)
    'interval 1800 seconds'
    """
    seconds = round(float(hours) * 3600)
    if seconds % 3600 == 0:
        return f"interval {seconds // 3600} hours"
    return f"interval {seconds} seconds"


def current_retention_hours(spark: SparkSession, path: str) -> float:
    """The retention Delta's VACUUM applies to the table now: its
    ``delta.deletedFileRetentionDuration`` in hours (168 by default)."""
    current = _hours_property(_properties(spark, path), RETENTION_PROPERTY)
    return DEFAULT_RETENTION_HOURS if current is None else current


def safety_retention_hours(spark: SparkSession, path: str) -> float:
    """The table's safety retention in hours: its ``delta.deletedFileRetentionDuration``
    before :func:`vacuum` first set it (recorded then in ``lakehouse.safetyRetentionDuration``),
    else its current ``delta.deletedFileRetentionDuration``, else 168.

    Recording it keeps the guard in force after an override: the lowered
    ``delta.deletedFileRetentionDuration`` does not become the new safety retention.
    """
    props = _properties(spark, path)
    for key in (SAFETY_RETENTION_PROPERTY, RETENTION_PROPERTY):
        hours = _hours_property(props, key)
        if hours is not None:
            return hours
    return DEFAULT_RETENTION_HOURS


def check_retention(
    *, table: str, retention_hours: float, safety_hours: float, allow_below_safety: bool
) -> bool:
    """Refuse a retention below the safety retention unless explicitly allowed.

    Returns True when the override is in use (the caller must log it).

    Examples
    --------
    >>> check_retention(table="t", retention_hours=1, safety_hours=168,
    ...                 allow_below_safety=False)
    Traceback (most recent call last):
    ...
    lakehouse.tuning.maintenance.VacuumRetentionError: VACUUM of table 't': retention 1.0 h is below the table's safety retention 168.0 h (delta.deletedFileRetentionDuration); set jobs.maintain.allow_retention_below_safety: true to override
    """
    if retention_hours >= safety_hours:
        return False
    if not allow_below_safety:
        raise VacuumRetentionError(
            f"VACUUM of table {table!r}: retention {float(retention_hours)} h is below the "
            f"table's safety retention {float(safety_hours)} h "
            "(delta.deletedFileRetentionDuration); set "
            "jobs.maintain.allow_retention_below_safety: true to override"
        )
    return True


def set_retention(spark: SparkSession, path: str, hours: float, *, safety_hours: float) -> bool:
    """Make ``hours`` the retention Delta's VACUUM uses for the table at ``path``.

    Sets ``delta.deletedFileRetentionDuration`` (Delta 4.2 ignores ``VACUUM ... RETAIN n
    HOURS`` for any n other than 0; the table property is the retention it applies). The
    first time it changes, ``safety_hours`` is recorded in
    ``lakehouse.safetyRetentionDuration`` (see :func:`safety_retention_hours`). Commits only
    when something changes; returns whether it did.
    """
    props = _properties(spark, path)
    current = _hours_property(props, RETENTION_PROPERTY)
    current = DEFAULT_RETENTION_HOURS if current is None else current
    if round(current * 3600) == round(float(hours) * 3600):
        return False
    wanted = {RETENTION_PROPERTY: retention_interval(hours)}
    if SAFETY_RETENTION_PROPERTY not in props:
        wanted[SAFETY_RETENTION_PROPERTY] = retention_interval(safety_hours)
    assignments = ", ".join(
        f"{property_literal(k)} = {sql_string_literal(v)}" for k, v in wanted.items()
    )
    spark.sql(f"ALTER TABLE {delta_path_identifier(path)} SET TBLPROPERTIES ({assignments})")
    return True


def vacuum(
    spark: SparkSession,
    path: str,
    *,
    table: str,
    retention_hours: float | None = None,
    allow_below_safety: bool = False,
    listing_parallelism: int | None = None,
) -> dict[str, Any]:
    """VACUUM the table, never below its safety retention unless explicitly overridden.

    The retention is the table property ``delta.deletedFileRetentionDuration``, set to
    ``retention_hours`` (default: the safety retention) before VACUUM runs without a
    ``RETAIN`` clause: Delta 4.2 ignores ``RETAIN n HOURS`` for every n but 0. The property
    stays on the table, so every later VACUUM of it (by any tool) uses the same retention.
    A retention below :func:`safety_retention_hours` raises :class:`VacuumRetentionError`
    before anything changes unless ``allow_below_safety`` is set; the override is logged
    at WARNING. (Delta's own ``spark.databricks.delta.retentionDurationCheck`` only compares
    a ``RETAIN`` clause with this property, so it cannot guard the property itself.)

    VACUUM lists the table directory with as many tasks as
    ``spark.sql.sources.parallelPartitionDiscovery.parallelism`` (10000 by default), which
    makes it take minutes on a small table; it runs with ``listing_parallelism`` tasks
    instead (default: 4 x the default parallelism, at least 8).

    Returns ``{retention_hours, safety_hours, override, retention_changed, files_deleted,
    listing_parallelism}``.
    """
    from delta.tables import DeltaTable

    safety = safety_retention_hours(spark, path)
    hours = safety if retention_hours is None else float(retention_hours)
    override = check_retention(
        table=table,
        retention_hours=hours,
        safety_hours=safety,
        allow_below_safety=allow_below_safety,
    )
    if override:
        log.warning(
            "VACUUM of table %r with retention %.1f h BELOW the safety retention %.1f h "
            "(explicit override jobs.maintain.allow_retention_below_safety)",
            table,
            hours,
            safety,
        )
    changed = set_retention(spark, path, hours, safety_hours=safety)
    listing = listing_parallelism or max(8, 4 * spark.sparkContext.defaultParallelism)
    with session_conf(spark, {LISTING_PARALLELISM: str(listing)}):
        # DRY RUN lists the files VACUUM will delete; VACUUM's own "VACUUM END" commit
        # (numDeletedFiles) exists only when spark.databricks.delta.vacuum.logging is on.
        deleted = spark.sql(f"VACUUM {delta_path_identifier(path)} DRY RUN").count()
        # Nothing to delete: skip VACUUM itself, which would still commit VACUUM START/END
        # entries and so give an unchanged table new versions on every maintenance run.
        if deleted:
            DeltaTable.forPath(spark, path).vacuum()
    return {
        "retention_hours": hours,
        "safety_hours": safety,
        "override": override,
        "retention_changed": changed,
        "files_deleted": deleted,
        "listing_parallelism": listing,
    }


# --------------------------------------------------------------------------- skipping


@dataclass(frozen=True)
class SkippingReport:
    """How many files Delta's statistics let a filter skip."""

    files_total: int
    files_read: int

    @property
    def files_skipped(self) -> int:
        return self.files_total - self.files_read

    @property
    def fraction_read(self) -> float:
        return self.files_read / self.files_total if self.files_total else 0.0


def explain_skipping(spark: SparkSession, path: str, predicate: Column | str) -> SkippingReport:
    """Files the scan of ``path`` filtered by ``predicate`` reads, out of the table's files.

    Measured from the executed scan's ``numFiles`` metric (after partition pruning and
    Delta's min/max data skipping), against ``numFiles`` in the Delta log.

    Examples
    --------
    >>> # explain_skipping(spark, "/data/t", F.col("x") == 5)
    >>> # SkippingReport(files_total=64, files_read=7)
    """
    df = spark.read.format("delta").load(path).where(predicate)
    stats = scan_stats(df, path=path)
    return SkippingReport(files_total=stats.files_total, files_read=stats.files_read)
