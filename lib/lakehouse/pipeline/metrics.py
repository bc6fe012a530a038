"""Prometheus metrics of a run, with ``prometheus_client``: pushed or written as a textfile.

After each ``lakehouse run`` the CLI calls :func:`export_metrics`, which builds one
``CollectorRegistry`` from the run report (:func:`run_registry`) and, per
``metrics:`` in the configuration,

* pushes it to a Pushgateway (``metrics.pushgateway_url``; grouping key ``job`` =
  ``metrics.job``, ``env`` = the environment), replacing that group's previous metrics;
* writes it to ``metrics.textfile`` for node-exporter's textfile collector.

Metrics (all gauges; ``job`` is the pipeline job, ``env`` the environment):

=============================================  ==========================================
``lakehouse_run_success``                      1 if every job succeeded, else 0
``lakehouse_run_duration_seconds``             the run's wall time
``lakehouse_run_finished_timestamp_seconds``   when the run ended (Unix time)
``lakehouse_job_success{job}``                 1 / 0
``lakehouse_job_duration_seconds{job}``        the job's wall time
``lakehouse_job_rows_in{job}``                 rows the job read
``lakehouse_job_rows_written{job}``            rows it wrote
``lakehouse_job_rows_quarantined{job}``        rows it quarantined
``lakehouse_job_increments{job}``              increments (micro-batches) it processed
``lakehouse_job_increment_lag_seconds{job}``   the largest lag of its increments: from the
                                               arrival of an increment's oldest input (a
                                               landing file's modification time) to the end
                                               of its processing; only jobs that know it
``lakehouse_expectation_failed_rows``          rows failing one expectation in this run
  ``{job,table,expectation,action}``
``lakehouse_table_last_success_timestamp``     when a successful job last committed a new
  ``_seconds{table}``                          version of the table (from the run history,
                                               so a no-op run keeps the earlier time)
``lakehouse_job_core_seconds{job}``,           executor core-seconds the job's (the run's)
``lakehouse_run_core_seconds``                 tasks used (:mod:`lakehouse.pipeline.cost`)
``lakehouse_job_spot_share{job}``,             share of those core-seconds on spot capacity
``lakehouse_run_spot_share``                   (cluster runs with a spot group)
``lakehouse_job_cost_usd{job}``,               the estimated cost; only with a price for
``lakehouse_run_cost_usd``                     the run (``cost.prices``/``local_core_hour``)
``lakehouse_job_cost_on_demand_usd{job}``,     the same on on-demand capacity only; priced
``lakehouse_run_cost_on_demand_usd``           runs only
=============================================  ==========================================

A failed push or write is logged as a warning naming the target; it does not change the
run's exit code.

Examples
--------
>>> from lakehouse.pipeline.report import JobResult, RunReport
>>> report = RunReport("b1", "local", "2026-01-01T00:00:00+00:00",
...     jobs=[JobResult("gold", rows_in=5, duration_s=2.0)],
...     finished_at="2026-01-01T00:00:03+00:00")
>>> from prometheus_client import generate_latest
>>> text = generate_latest(run_registry(report, last_writes={})).decode()
>>> 'lakehouse_job_rows_in{env="local",job="gold"} 5.0' in text
True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakehouse.pipeline.history import RunRecord, last_writes, load_runs

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from lakehouse.config import Settings
    from lakehouse.pipeline.report import RunReport

__all__ = ["export_metrics", "run_registry"]

log = logging.getLogger(__name__)

_JOB_GAUGES = {
    "success": "1 if the job succeeded, else 0",
    "duration_seconds": "the job's wall time in seconds",
    "rows_in": "rows the job read",
    "rows_written": "rows the job wrote",
    "rows_quarantined": "rows the job quarantined",
    "increments": "increments (micro-batches) the job processed",
}


def _increments(details: Mapping[str, Any]) -> int:
    return sum(len(src.get("increments") or []) for src in details.get("increments") or [])


def _lag(details: Mapping[str, Any]) -> float | None:
    """The largest ``lag_s`` of the job's increments; None if none knows its lag."""
    lags = [
        float(inc["lag_s"])
        for src in details.get("increments") or []
        for inc in src.get("increments") or []
        if inc.get("lag_s") is not None
    ]
    return max(lags) if lags else None


def run_registry(
    report: RunReport, *, last_writes: Mapping[str, tuple[datetime, str]]
) -> CollectorRegistry:
    """The run's metrics (see the module docs) in a new registry."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    env = report.env
    record = RunRecord.from_dict(asdict(report))  # its status and duration, as `runs` shows
    Gauge("lakehouse_run_success", "1 if every job succeeded, else 0", ["env"],
          registry=registry).labels(env).set(1 if record.status == "ok" else 0)  # fmt: skip
    Gauge("lakehouse_run_duration_seconds", "the run's wall time in seconds", ["env"],
          registry=registry).labels(env).set(record.duration_s)  # fmt: skip
    if record.finished_at is not None:
        Gauge("lakehouse_run_finished_timestamp_seconds", "when the run ended (Unix time)",
              ["env"], registry=registry).labels(env).set(record.finished_at.timestamp())  # fmt: skip
    gauges = {
        name: Gauge(f"lakehouse_job_{name}", doc, ["env", "job"], registry=registry)
        for name, doc in _JOB_GAUGES.items()
    }
    lag = Gauge(
        "lakehouse_job_increment_lag_seconds",
        "the largest lag of the job's increments: arrival of the oldest input to processed",
        ["env", "job"],
        registry=registry,
    )
    failed_rows = Gauge(
        "lakehouse_expectation_failed_rows",
        "rows failing one expectation in this run",
        ["env", "job", "table", "expectation", "action"],
        registry=registry,
    )
    for job in report.jobs:
        values = {
            "success": 1 if job.status == "ok" else 0,
            "duration_seconds": job.duration_s,
            "rows_in": job.rows_in,
            "rows_written": job.rows_written,
            "rows_quarantined": job.rows_quarantined,
            "increments": _increments(job.details),
        }
        for name, value in values.items():
            gauges[name].labels(env, job.job).set(value)
        if (job_lag := _lag(job.details)) is not None:
            lag.labels(env, job.job).set(job_lag)
        failed: dict[tuple[str, str, str], int] = {}
        for result in job.details.get("quality") or []:  # one entry per increment checked
            key = (str(result["table"]), str(result["name"]), str(result["action"]))
            failed[key] = failed.get(key, 0) + int(result["failed"])
        for (table, name, action), n in failed.items():
            failed_rows.labels(env, job.job, table, name, action).set(n)
    fresh = Gauge(
        "lakehouse_table_last_success_timestamp_seconds",
        "when a successful job last committed a new version of the table (Unix time)",
        ["env", "table"],
        registry=registry,
    )
    for table, (when, _run) in sorted(last_writes.items()):
        fresh.labels(env, table).set(when.timestamp())
    _cost_gauges(registry, report)
    return registry


#: The cost metrics: estimate key -> (metric suffix, help).
_COST_GAUGES = {
    "core_s": ("core_seconds", "executor core-seconds its tasks used"),
    "spot_share": ("spot_share", "share of those core-seconds on spot capacity"),
    "usd": ("cost_usd", "its estimated cost in USD"),
    "on_demand_usd": ("cost_on_demand_usd", "its estimated cost on on-demand capacity only"),
}


def _cost_gauges(registry: CollectorRegistry, report: RunReport) -> None:
    """Per job and for the run, each figure of the cost estimate the run has."""
    from prometheus_client import Gauge

    env = report.env
    for key, (suffix, doc) in _COST_GAUGES.items():
        jobs = [(j.job, j.details["cost"][key]) for j in report.jobs
                if (j.details.get("cost") or {}).get(key) is not None]  # fmt: skip
        if jobs:
            gauge = Gauge(f"lakehouse_job_{suffix}", f"the job's {doc}", ["env", "job"],
                          registry=registry)  # fmt: skip
            for job, value in jobs:
                gauge.labels(env, job).set(value)
        if report.cost.get(key) is not None:
            Gauge(f"lakehouse_run_{suffix}", f"the run's {doc}", ["env"],
                  registry=registry).labels(env).set(report.cost[key])  # fmt: skip


def export_metrics(settings: Settings, report: RunReport) -> list[str]:
    """Push and/or write the run's metrics per ``settings.metrics``; the targets written.

    The table freshness comes from the run history in ``settings.reports_path`` (the
    report of this run included, once written).
    """
    cfg = settings.metrics
    if cfg.pushgateway_url is None and cfg.textfile is None:
        return []
    from prometheus_client import push_to_gateway, write_to_textfile

    registry = run_registry(report, last_writes=last_writes(load_runs(settings.reports_path)))
    done = []
    if cfg.pushgateway_url is not None:
        try:
            push_to_gateway(
                cfg.pushgateway_url,
                job=cfg.job,
                grouping_key={"env": report.env},
                registry=registry,
                timeout=10,
            )
            done.append(cfg.pushgateway_url)
        except OSError as exc:  # URLError, connection refused, timeout
            log.warning("metrics: push to %s failed: %s", cfg.pushgateway_url, exc)
    if cfg.textfile is not None:
        try:
            write_to_textfile(cfg.textfile, registry)
            done.append(cfg.textfile)
        except OSError as exc:
            log.warning("metrics: cannot write %s: %s", cfg.textfile, exc)
    return done
