"""Table maintenance, the last step of the pipeline: layout properties, OPTIMIZE (bin-packing,
Z-order or liquid clustering per the table's layout) on the partitions changed since the last
OPTIMIZE, then VACUUM with a retention that cannot drop below the table's safety retention
unless ``jobs.maintain.allow_retention_below_safety`` is set (and then it is logged).

A table written by the CDC engine has an event log beside it (``<path>/_cdc_log``,
:mod:`lakehouse.scd2.log`), a Delta table that every applied batch appends to. It is
maintained with its table, as ``<table>__cdc_log``: bin-packing OPTIMIZE under the same
``optimize_min_files`` rule, and VACUUM, which is what frees the files of expired events.

``plan`` is pure: from the settings and what is known about each table it decides what to do.
``run`` looks the tables up, calls ``plan`` and executes it with :mod:`lakehouse.tuning.maintenance`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import Field

from lakehouse.config import Identifier, JobSettings, Settings, TableSettings
from lakehouse.pipeline import JobContext
from lakehouse.spark.delta import event_log_location, is_delta_table, table_version
from lakehouse.spark.fs import path_exists, read_text, write_text
from lakehouse.tuning.maintenance import (
    apply_layout,
    changes_since_optimize,
    check_retention,
    optimize,
    safety_retention_hours,
    vacuum,
)
from lakehouse.writes.retry import retry_on_conflict

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["JOB", "LOG_SUFFIX", "Config", "TableState", "TableTask", "plan", "run"]

JOB = "maintain"
#: The name under which a table's CDC event log is maintained and reported.
LOG_SUFFIX = "__cdc_log"


class Config(JobSettings):
    """``conf/jobs/maintain.yaml``: which tables, OPTIMIZE and VACUUM settings."""

    #: Tables to maintain; empty = every table in the job's declared inputs.
    tables: list[Identifier] = Field(default_factory=list)
    optimize: bool = True
    #: Optimize only partitions with commits since the last OPTIMIZE (when partitioned).
    incremental: bool = True
    #: OPTIMIZE a table only once its commits since its last OPTIMIZE added at least this
    #: many data files (the idea of Delta auto compaction's minNumFiles): each OPTIMIZE of
    #: a small table rewrites all of it, so compacting after every small increment costs
    #: more than the files it merges. 1 = whenever anything was added. A table never
    #: optimized is always optimized.
    optimize_min_files: int = Field(default=1, ge=1, le=100_000)
    vacuum: bool = True
    #: VACUUM retention, set as the table property delta.deletedFileRetentionDuration
    #: (Delta 4.2 ignores ``VACUUM ... RETAIN n HOURS`` for n != 0). None = the table's safety
    #: retention: its delta.deletedFileRetentionDuration before maintain first changed it
    #: (recorded in lakehouse.safetyRetentionDuration; 168 h unless set).
    vacuum_retention_hours: float | None = Field(default=None, ge=0, le=87_600)
    #: Must be true to VACUUM with less than the table's safety retention (logged loudly).
    allow_retention_below_safety: bool = False
    #: Tasks VACUUM lists the table directory with; None = 4 x the default parallelism
    #: (min 8). Spark's own default (spark.sql.sources.parallelPartitionDiscovery.parallelism,
    #: 10000) makes VACUUM of a small table run 10000 near-empty tasks.
    vacuum_listing_parallelism: int | None = Field(default=None, ge=1, le=100_000)
    #: Look for files to VACUUM at most this often per table (0 = every run). Finding them
    #: lists the whole table directory, the slowest part of a run with nothing new; the
    #: time of each table's last look is kept in ``<data_root>/_checkpoints/maintain/tables/``.
    vacuum_interval_hours: float = Field(default=24.0, ge=0, le=87_600)


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableState:
    """What ``run`` found out about one table before planning."""

    exists: bool
    #: Partitions with commits since the last OPTIMIZE; None = unknown/never optimized (all).
    changed: list[dict[str, str | None]] | None = None
    safety_hours: float = 168.0
    #: Data files the commits since the last OPTIMIZE added; None = never optimized.
    files_added: int | None = None


@dataclass(frozen=True)
class TableTask:
    """The maintenance decided for one table."""

    table: str
    path: str
    optimize: bool
    #: Partitions to OPTIMIZE; None = the whole table.
    partitions: list[dict[str, str | None]] | None
    vacuum: bool
    retention_hours: float
    retention_override: bool
    skipped: str | None = None
    #: Why OPTIMIZE waits this run (too few new files); None = it runs if ``optimize``.
    optimize_deferred: str | None = None


def _targets(cfg: Config) -> list[str]:
    """``tables`` if set, else every declared input (the loader checks both are declared)."""
    return list(cfg.tables or cfg.inputs)


def plan(settings: Settings, cfg: Config, states: Mapping[str, TableState]) -> list[TableTask]:
    """Decide what to do per table (pure: no IO).

    Raises
    ------
    lakehouse.tuning.maintenance.VacuumRetentionError
        If the configured retention is below a table's safety retention and the override
        is not set: nothing runs.
    """
    tasks = []
    for name in _targets(cfg):
        state = states.get(name, TableState(exists=False))
        path = settings.table_path(name)
        if not state.exists:
            tasks.append(
                TableTask(name, path, False, None, False, 0.0, False, skipped="not a Delta table")
            )
            continue
        retention = (
            state.safety_hours
            if cfg.vacuum_retention_hours is None
            else float(cfg.vacuum_retention_hours)
        )
        override = cfg.vacuum and check_retention(
            table=name,
            retention_hours=retention,
            safety_hours=state.safety_hours,
            allow_below_safety=cfg.allow_retention_below_safety,
        )
        layout = settings.tables[name]
        partitions = state.changed if (cfg.incremental and layout.partition_by) else None
        if cfg.incremental and not layout.partition_by and state.changed == []:
            partitions = []  # unpartitioned and nothing new since the last OPTIMIZE
        deferred = None
        if state.files_added is not None and state.files_added < cfg.optimize_min_files:
            deferred = (
                f"{state.files_added} files added since the last OPTIMIZE; "
                f"optimize_min_files is {cfg.optimize_min_files}"
            )
        tasks.append(
            TableTask(
                table=name,
                path=path,
                optimize=cfg.optimize and deferred is None,
                partitions=partitions,
                vacuum=cfg.vacuum,
                retention_hours=retention,
                retention_override=bool(override),
                optimize_deferred=deferred if cfg.optimize else None,
            )
        )
    return tasks


def _state(spark: SparkSession, path: str, *, count_files: bool) -> TableState:
    if not is_delta_table(spark, path):
        return TableState(exists=False)
    changed, files_added = changes_since_optimize(spark, path, count_files=count_files)
    return TableState(
        exists=True,
        changed=changed,
        safety_hours=safety_retention_hours(spark, path),
        files_added=files_added,
    )


def _maintain(ctx: JobContext[Config], task: TableTask, layout: TableSettings) -> dict[str, Any]:
    """Layout properties, OPTIMIZE and VACUUM of one table, as the task says."""
    cfg = ctx.config
    entry: dict[str, Any] = {"layout": apply_layout(ctx.spark, task.path, layout)}
    if task.optimize:
        # OPTIMIZE rewrites only what is still uncompacted, so a retry after a commit
        # conflict with a concurrent writer is safe.
        report = retry_on_conflict(
            partial(optimize, ctx.spark, task.path, layout, partitions=task.partitions),
            describe=f"{JOB}: OPTIMIZE {task.table}",
        )
        entry["optimize"] = _optimize_details(asdict(report))
        ctx.result.rows_written += report.files_added
    elif task.optimize_deferred:
        entry["optimize"] = {"skipped": task.optimize_deferred}
    due = _vacuum_due(ctx, task.table)
    if task.vacuum and due is not None:
        entry["vacuum"] = {"skipped": due}
    elif task.vacuum:
        entry["vacuum"] = vacuum(
            ctx.spark,
            task.path,
            table=task.table,
            retention_hours=task.retention_hours,
            allow_below_safety=cfg.allow_retention_below_safety,
            listing_parallelism=cfg.vacuum_listing_parallelism,
        )
    return entry


def _state_path(ctx: JobContext[Config], table: str) -> str:
    return f"{ctx.checkpoint('tables')}/{table}.json"


def _memory(ctx: JobContext[Config], table: str) -> dict[str, Any]:
    """What maintain remembers of a table: the version it left it at, and when it last
    looked for VACUUM work."""
    text = read_text(ctx.spark, _state_path(ctx, table))
    return dict(json.loads(text)) if text else {}


def _remember(ctx: JobContext[Config], table: str, path: str, vacuumed: bool) -> None:
    memory = _memory(ctx, table)
    memory["version"] = table_version(ctx.spark, path)
    if vacuumed:
        memory["vacuum_checked_at"] = time.time()
    write_text(ctx.spark, _state_path(ctx, table), json.dumps(memory))


def _vacuum_due(ctx: JobContext[Config], table: str) -> str | None:
    """None when the table's VACUUM is due; else why it is skipped this run."""
    interval = ctx.config.vacuum_interval_hours
    checked = _memory(ctx, table).get("vacuum_checked_at") if interval > 0 else None
    if checked is None:
        return None
    hours = (time.time() - float(checked)) / 3600
    if hours >= interval:
        return None
    return f"looked {hours:.1f} h ago; vacuum_interval_hours is {interval:g}"


def _untouched(ctx: JobContext[Config], name: str, path: str) -> bool:
    """No commit since maintain last left the table, and no VACUUM look due."""
    version = _memory(ctx, name).get("version")
    return (
        version is not None
        and version == table_version(ctx.spark, path)
        and (not ctx.config.vacuum or _vacuum_due(ctx, name) is not None)
    )


def _with_event_logs(ctx: JobContext[Config]) -> tuple[Settings, dict[str, str]]:
    """The settings with each target's CDC event log declared as ``<table>__cdc_log``
    (a plain table: no partitions, bin-packing), and every table to maintain by path."""
    paths = {name: ctx.input_path(name) for name in _targets(ctx.config)}
    logs = {
        f"{name}{LOG_SUFFIX}": event_log_location(path)
        for name, path in paths.items()
        if path_exists(ctx.spark, f"{event_log_location(path)}/_delta_log")
    }
    declared = {
        name: TableSettings(path=path, layer="meta", description=f"CDC event log of {name}")
        for name, path in logs.items()
    }
    settings = ctx.settings.model_copy(update={"tables": {**ctx.settings.tables, **declared}})
    return settings, {**paths, **logs}


def run(ctx: JobContext[Config]) -> None:
    """Maintain every configured table and the CDC event logs beside them; details per
    table in ``result.details["tables"]``.

    A table with no commit since maintain last left it (and no VACUUM look due) is skipped
    without reading its history: a run with nothing new reads one small file per table.
    """
    settings, paths = _with_event_logs(ctx)
    per_table: dict[str, Any] = {}
    targets = []
    for name, path in paths.items():
        if _untouched(ctx, name, path):
            per_table[name] = {"skipped": "no commits since the last maintenance"}
        else:
            targets.append(name)
    count = ctx.config.optimize_min_files > 1
    states = {name: _state(ctx.spark, paths[name], count_files=count) for name in targets}
    cfg = ctx.config.model_copy(update={"tables": targets})
    for task in plan(settings, cfg, states) if targets else []:
        if task.skipped:
            per_table[task.table] = {"skipped": task.skipped}
            continue
        entry = per_table[task.table] = _maintain(ctx, task, settings.tables[task.table])
        ctx.result.tables[task.table] = table_version(ctx.spark, task.path)
        _remember(ctx, task.table, task.path, vacuumed="files_deleted" in entry.get("vacuum", {}))
    ctx.result.details["tables"] = per_table
    ctx.result.details["batch_id"] = ctx.batch_id
    # the run report's no-op flag: every table skipped, none optimized or vacuumed
    noop = all(set(entry) == {"skipped"} for entry in per_table.values())
    ctx.result.details["noop"] = noop
    if noop:
        ctx.result.details["noop_reason"] = "no table needed maintenance"


def _optimize_details(report: Mapping[str, Any]) -> dict[str, Any]:
    keep: Sequence[str] = (
        "mode",
        "files_before",
        "files_after",
        "files_added",
        "files_removed",
        "bytes_added",
        "bytes_removed",
        "partitions",
        "version",
        "skipped",
    )
    return {k: report[k] for k in keep}
