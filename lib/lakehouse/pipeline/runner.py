"""Run jobs in medallion order and collect a :class:`~lakehouse.pipeline.report.RunReport`."""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from lakehouse.config import Settings
from lakehouse.pipeline.report import JobResult, RunReport
from lakehouse.writes.idempotency import commit_metadata

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["PIPELINE", "JobFailedError", "new_batch_id", "run_job", "run_pipeline"]

log = logging.getLogger(__name__)

#: The jobs of the pipeline, in the order they run.
PIPELINE: tuple[str, ...] = (
    "bronze_ingest",
    "silver_customers",
    "silver_orders",
    "gold_daily_sales",
    "maintain",
)


class JobFailedError(RuntimeError):
    """A job of the pipeline failed; ``report`` holds what ran before and the failure."""

    def __init__(self, job: str, reason: str, report: RunReport) -> None:
        super().__init__(f"job {job} failed: {reason}")
        self.job = job
        self.reason = reason
        self.report = report


class _JobModule(Protocol):
    def run(self, spark: SparkSession, settings: Settings, *, batch_id: str) -> JobResult: ...


def new_batch_id(now: datetime | None = None) -> str:
    """A sortable, unique batch id: ``20261125T093000Z-1a2b3c4d``."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def load_job(name: str) -> _JobModule:
    if name not in PIPELINE and name not in _extra_jobs():
        raise KeyError(f"unknown job {name!r}; known: {sorted({*PIPELINE, *_extra_jobs()})}")
    module: _JobModule = importlib.import_module(f"jobs.{name}")
    return module


def _extra_jobs() -> tuple[str, ...]:
    return ()


def run_job(spark: SparkSession, settings: Settings, name: str, *, batch_id: str) -> JobResult:
    """Run one job; failures come back as a result with ``status='failed'``."""
    import time

    module = load_job(name)
    start = time.perf_counter()
    try:
        # Every commit of the job names its batch, so `lakehouse rollback` can find it.
        with commit_metadata(spark, job=name, batch_id=batch_id):
            result = module.run(spark, settings, batch_id=batch_id)
    except Exception as exc:
        log.exception("job %s failed", name)
        result = JobResult(job=name, status="failed", error=f"{type(exc).__name__}: {exc}")
    result.duration_s = round(time.perf_counter() - start, 3)
    return result


def run_pipeline(
    spark: SparkSession,
    settings: Settings,
    *,
    jobs: Sequence[str] = PIPELINE,
    batch_id: str | None = None,
    report: RunReport | None = None,
) -> RunReport:
    """Run ``jobs`` in order, stopping at the first failure (raises :class:`JobFailedError`)."""
    batch_id = batch_id or new_batch_id()
    report = report or RunReport(
        run_id=batch_id, env=settings.env, started_at=datetime.now(UTC).isoformat()
    )
    for name in jobs:
        if not settings.job(name).enabled:
            log.info("job %s disabled in config; skipped", name)
            continue
        result = run_job(spark, settings, name, batch_id=batch_id)
        report.jobs.append(result)
        if result.status != "ok":
            raise JobFailedError(name, result.error or "unknown error", report)
    return report
