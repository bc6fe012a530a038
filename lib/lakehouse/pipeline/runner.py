"""Run declared jobs in dependency order and collect a :class:`~lakehouse.pipeline.report.RunReport`.

The order comes from the job graph (:class:`~lakehouse.pipeline.registry.JobRegistry`);
each job's ``run(ctx)`` gets a :class:`~lakehouse.pipeline.context.JobContext`.

A run is incremental: each job's streams pick up where its checkpoints stopped
(:mod:`lakehouse.pipeline.incremental`). :func:`full_refresh` deletes jobs' outputs and
checkpoints so the next run rebuilds them from their sources; :func:`run_continuous`
keeps the jobs' streams running with a processing-time trigger until asked to stop.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.context import JobContext, job_context
from lakehouse.pipeline.cost import RunMeter
from lakehouse.pipeline.incremental import (
    AVAILABLE_NOW,
    StreamRun,
    Trigger,
    checkpoints_root,
    file_stream_checkpoints,
    stop_gracefully,
)
from lakehouse.pipeline.lineage import run_lineage
from lakehouse.pipeline.registry import JobRegistry
from lakehouse.pipeline.report import JobResult, RunReport, timed
from lakehouse.spark.fs import delete_path
from lakehouse.spark.stages import StageTiming

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakehouse.pipeline.progress import RunProgress

__all__ = [
    "JobFailedError",
    "execute_job",
    "full_refresh",
    "new_batch_id",
    "reset_file_streams",
    "run_continuous",
    "run_job",
    "run_pipeline",
]

log = logging.getLogger(__name__)


class JobFailedError(LakehouseError, RuntimeError):
    """A job of the pipeline failed; ``report`` holds what ran before and the failure."""

    def __init__(self, job: str, reason: str, report: RunReport) -> None:
        super().__init__(f"job {job} failed: {reason}")
        self.job = job
        self.reason = reason
        self.report = report


def new_batch_id(now: datetime | None = None) -> str:
    """A sortable, unique batch id: ``20261125T093000Z-1a2b3c4d``."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def execute_job(
    spark: SparkSession,
    settings: Settings,
    name: str,
    *,
    batch_id: str,
    registry: JobRegistry | None = None,
    trigger: Trigger = AVAILABLE_NOW,
) -> JobResult:
    """Run one job and return its result; an exception of the job propagates.

    Examples
    --------
    ``execute_job(spark, settings, "silver_orders", batch_id="b1").rows_written``
    """
    registry = registry or JobRegistry.from_settings(settings)
    module = registry.module(name)
    with job_context(spark, settings, name, batch_id=batch_id, trigger=trigger) as ctx:
        module.run(ctx)
    return ctx.result


def run_job(
    spark: SparkSession,
    settings: Settings,
    name: str,
    *,
    batch_id: str,
    registry: JobRegistry | None = None,
) -> JobResult:
    """Run one job; a failure comes back as a result with ``status='failed'``."""
    failed = JobResult(job=name, status="failed")
    with timed(failed):
        try:
            return execute_job(spark, settings, name, batch_id=batch_id, registry=registry)
        except Exception as exc:
            log.exception("job %s failed", name)
            failed.error = f"{type(exc).__name__}: {exc}"
    return failed


def run_pipeline(
    spark: SparkSession,
    settings: Settings,
    *,
    jobs: Sequence[str] | None = None,
    batch_id: str | None = None,
    report: RunReport | None = None,
    progress: RunProgress | None = None,
) -> RunReport:
    """Run ``jobs`` (default: every declared job) in dependency order.

    Disabled jobs are skipped. Stops at the first failure and raises
    :class:`JobFailedError`, whose ``report`` holds what ran. ``progress`` is told when
    each job starts and ends (live display or heartbeat lines); with ``lineage.transport``
    set, each job's OpenLineage events are emitted (:mod:`lakehouse.pipeline.lineage`).
    """
    registry = JobRegistry.from_settings(settings)
    batch_id = batch_id or new_batch_id()
    report = report or RunReport(
        run_id=batch_id, env=settings.env, started_at=datetime.now(UTC).isoformat()
    )
    lineage = run_lineage(spark, settings, batch_id)
    meter = RunMeter(spark, settings)
    try:
        for name in registry.order(jobs):
            if not registry.jobs[name].enabled:
                log.info("job %s disabled in config; skipped", name)
                continue
            log.info("job %s: start (batch %s)", name, batch_id)
            if progress is not None:
                progress.job_started(name)
            if lineage is not None:
                lineage.job_started(name)
            meter.job_started()
            started = time.time()
            result = run_job(spark, settings, name, batch_id=batch_id, registry=registry)
            stages, result.details["cost"] = meter.job_finished(started)
            _record_stages(result, stages, started)
            if lineage is not None:
                lineage.job_finished(name, result)
            if progress is not None:
                progress.job_finished(name)
            log.info("job %s: %s in %.1f s", name, result.status, result.duration_s)
            report.jobs.append(result)
            if result.status != "ok":
                raise JobFailedError(name, result.error or "unknown error", report)
    finally:
        report.cost = meter.run_cost()
    return report


#: Stages kept per job in the run report (the longest, when a job ran more).
MAX_STAGES = 200


def _record_stages(result: JobResult, stages: list[StageTiming], started: float) -> None:
    """The job's start time, the Spark stages it ran (the HTML report's timeline) and
    their executor run time, into ``result``."""
    result.started_at = datetime.fromtimestamp(started, UTC).isoformat()
    result.details["executor_run_s"] = round(sum(s.executor_run_ms for s in stages) / 1000, 3)
    if len(stages) > MAX_STAGES:
        result.details["stages_left_out"] = len(stages) - MAX_STAGES
        longest = sorted(stages, key=lambda s: s.submitted_ms - s.completed_ms)[:MAX_STAGES]
        stages = sorted(longest, key=lambda s: (s.submitted_ms, s.stage_id))
    result.details["stages"] = [asdict(s) for s in stages]


def full_refresh(spark: SparkSession, settings: Settings, jobs: Iterable[str]) -> list[str]:
    """Delete what ``jobs`` remember so their next run rebuilds from their sources: every
    declared output (except ``external`` tables) and the jobs' streaming checkpoints.

    Returns the paths deleted. Pass a job together with everything downstream of it
    (:meth:`JobRegistry.downstream`): a table rebuilt under a downstream job that still
    remembers the old one would be read from the wrong place.
    """
    deleted = []
    for name in jobs:
        job = settings.job(name)
        paths = [settings.table_path(t) for t in job.outputs if not settings.tables[t].external]
        paths.append(f"{checkpoints_root(settings)}/{name}")
        for path in paths:
            if delete_path(spark, path):
                log.info("full refresh of %s: deleted %s", name, path)
                deleted.append(path)
    return deleted


def reset_file_streams(
    spark: SparkSession, settings: Settings, tables: Iterable[str], *, dry_run: bool = False
) -> list[str]:
    """After a rollback of ``tables``: delete the file-stream checkpoints of every job that
    writes one of them, so the job's next run lists its landing files again and ingests
    the rolled-back batch's files anew. Returns the checkpoints deleted (or, with
    ``dry_run``, that would be).

    What counts as already ingested is then the job's own record, rolled back with it:
    ``bronze_ingest`` skips every file its landing ledger lists. Only the file streams
    are reset. Streams over Delta tables skip the rollback's ``RESTORE`` commits
    (``skipChangeCommits``) and go on from where they stopped, so a re-ingested file
    reaches them as new rows.
    """
    rolled_back = set(tables)
    found = []
    for name in sorted(settings.jobs):
        if rolled_back & set(settings.job(name).outputs):
            found += file_stream_checkpoints(spark, settings, name)
    if not dry_run:
        for path in found:
            delete_path(spark, path)
            log.info("reset file stream checkpoint %s", path)
    return found


def run_continuous(
    spark: SparkSession,
    settings: Settings,
    *,
    trigger: Trigger,
    stop: threading.Event,
    jobs: Sequence[str] | None = None,
    batch_id: str | None = None,
) -> RunReport:
    """Catch up with one batch run, then keep every job's streams running with ``trigger``
    until ``stop`` is set (or a stream fails); stop them at an increment boundary.

    Jobs without streams (such as maintenance) run once when the streams start. A stream
    over a table that does not exist yet starts once the table does (looked for every
    :data:`PENDING_POLL_S` seconds), so a first landing file flows to gold without a
    restart. Raises :class:`JobFailedError` if the catch-up run or a stream fails.
    """
    if not trigger.continuous:
        raise ValueError("run_continuous needs a processing-time trigger (Trigger.every)")
    batch_id = batch_id or new_batch_id()
    meter = RunMeter(spark, settings)
    report = run_pipeline(spark, settings, jobs=jobs, batch_id=batch_id)
    registry = JobRegistry.from_settings(settings)
    contexts: list[JobContext[Any]] = []
    try:
        for name in registry.order(jobs):
            if not registry.jobs[name].enabled:
                continue
            with job_context(spark, settings, name, batch_id=batch_id, trigger=trigger) as ctx:
                contexts.append(ctx)
                registry.module(name).run(ctx)
            log.info("job %s: %d stream(s) running", name, len(ctx.streams))
        _wait(contexts, stop)
    finally:
        stop_gracefully([r for c in contexts for r in c.streams])
        report.cost = meter.run_cost()
    failed = _collect(contexts, report)
    if failed is not None:
        raise JobFailedError(failed.job, failed.error or "stream failed", report)
    return report


#: How often a continuous run looks for the tables its waiting streams need.
PENDING_POLL_S = 5.0


def _wait(contexts: Sequence[JobContext[Any]], stop: threading.Event) -> None:
    """Until ``stop`` is set or one of the streams is no longer active; meanwhile start
    the streams whose tables have appeared."""
    polled = time.monotonic()
    while not stop.wait(0.5):
        if time.monotonic() - polled >= PENDING_POLL_S:
            polled = time.monotonic()
            for ctx in contexts:
                for source in ctx.start_pending():
                    log.info(
                        "job %s: stream over %s started (its table exists now)", ctx.job, source
                    )
        runs = [r for c in contexts for r in c.streams if r.query is not None]
        if any(not r.query.isActive for r in runs if r.query is not None):
            return


def _stream_error(run: StreamRun) -> str | None:
    if run.error is not None:
        return f"{type(run.error).__name__}: {run.error}"
    exc = run.query.exception() if run.query is not None else None
    return None if exc is None else f"StreamingQueryException: {exc}"


def _collect(contexts: Sequence[JobContext[Any]], report: RunReport) -> JobResult | None:
    """Add each job's continuous-phase result to ``report``; return the first failure."""
    failed = None
    for ctx in contexts:
        ctx.stream_summary()
        ctx.result.job = f"{ctx.job} (continuous)"
        errors = [e for e in (_stream_error(r) for r in ctx.streams) if e]
        if errors:
            ctx.result.status, ctx.result.error = "failed", "; ".join(errors)
            failed = failed or ctx.result
        report.jobs.append(ctx.result)
    return failed
