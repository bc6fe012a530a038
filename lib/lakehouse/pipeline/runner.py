"""Run declared jobs in dependency order and collect a :class:`~lakehouse.pipeline.report.RunReport`.

The order comes from the job graph (:class:`~lakehouse.pipeline.registry.JobRegistry`);
each job's ``run(ctx)`` gets a :class:`~lakehouse.pipeline.context.JobContext`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.context import job_context
from lakehouse.pipeline.registry import JobRegistry
from lakehouse.pipeline.report import JobResult, RunReport, timed

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["JobFailedError", "execute_job", "new_batch_id", "run_job", "run_pipeline"]

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
) -> JobResult:
    """Run one job and return its result; an exception of the job propagates.

    Examples
    --------
    ``execute_job(spark, settings, "silver_orders", batch_id="b1").rows_written``
    """
    registry = registry or JobRegistry.from_settings(settings)
    module = registry.module(name)
    with job_context(spark, settings, name, batch_id=batch_id) as ctx:
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
) -> RunReport:
    """Run ``jobs`` (default: every declared job) in dependency order.

    Disabled jobs are skipped. Stops at the first failure and raises
    :class:`JobFailedError`, whose ``report`` holds what ran.
    """
    registry = JobRegistry.from_settings(settings)
    batch_id = batch_id or new_batch_id()
    report = report or RunReport(
        run_id=batch_id, env=settings.env, started_at=datetime.now(UTC).isoformat()
    )
    for name in registry.order(jobs):
        if not registry.jobs[name].enabled:
            log.info("job %s disabled in config; skipped", name)
            continue
        log.info("job %s: start (batch %s)", name, batch_id)
        result = run_job(spark, settings, name, batch_id=batch_id, registry=registry)
        log.info("job %s: %s in %.1f s", name, result.status, result.duration_s)
        report.jobs.append(result)
        if result.status != "ok":
            raise JobFailedError(name, result.error or "unknown error", report)
    return report
