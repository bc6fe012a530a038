"""Run reports: what each job read, wrote and quarantined, printed and saved as JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.errors import LakehouseError

__all__ = ["JobResult", "ReconciliationError", "RunReport", "cost_summary", "timed"]


class ReconciliationError(LakehouseError, RuntimeError):
    """Row counts do not add up (input != accepted + quarantined)."""


@dataclass
class JobResult:
    """The outcome of one job run.

    ``tables`` maps each table written to its Delta version after the run; ``reads``
    maps each table read to scan statistics; ``details`` holds job-specific numbers.
    """

    job: str
    status: str = "ok"
    rows_in: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    duration_s: float = 0.0
    tables: dict[str, int | None] = field(default_factory=dict)
    reads: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: When the job started (ISO 8601, UTC); set by the runner.
    started_at: str | None = None

    def check_reconciled(self, *, rows_in: int, accepted: int, quarantined: int) -> None:
        """Record the three counts and fail unless ``rows_in == accepted + quarantined``."""
        self.details["reconciliation"] = {
            "input": rows_in,
            "accepted": accepted,
            "quarantined": quarantined,
            "reconciled": rows_in == accepted + quarantined,
        }
        if rows_in != accepted + quarantined:
            raise ReconciliationError(
                f"{self.job}: input ({rows_in}) != accepted ({accepted}) + "
                f"quarantined ({quarantined}); {rows_in - accepted - quarantined} rows unaccounted"
            )


@contextmanager
def timed(result: JobResult) -> Iterator[JobResult]:
    """Measure the wall time of a block into ``result.duration_s``."""
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.duration_s = round(time.perf_counter() - start, 3)


@dataclass
class RunReport:
    """All job results of one CLI invocation."""

    run_id: str
    env: str
    started_at: str
    jobs: list[JobResult] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    #: When the run ended (ISO 8601, UTC); set by the CLI before the report is written.
    finished_at: str | None = None
    #: The run's estimated cost (:mod:`lakehouse.pipeline.cost`); each job's is in its
    #: ``details["cost"]``.
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(j.status == "ok" for j in self.jobs)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False, default=str)

    def write(self, directory: str) -> str | None:
        """Write ``<directory>/run_<run_id>.json`` (local paths only) and return its path."""
        if "://" in directory:
            return None
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        out = path / f"run_{self.run_id}.json"
        out.write_text(self.to_json() + "\n", encoding="utf-8")
        return str(out)

    def render(self) -> str:
        """A fixed-width table, one line per job."""
        header = (
            f"{'job':<18} {'status':<7} {'rows in':>10} {'written':>10} {'quarant.':>9} "
            f"{'secs':>7}  tables (Delta version)"
        )
        lines = [f"run {self.run_id} (env {self.env})", header, "-" * len(header)]
        for j in self.jobs:
            tables = ", ".join(f"{k}@v{v}" for k, v in j.tables.items())
            lines.append(
                f"{j.job:<18} {j.status:<7} {j.rows_in:>10} {j.rows_written:>10} "
                f"{j.rows_quarantined:>9} {j.duration_s:>7.1f}  {tables}"
            )
            for table, stats in j.reads.items():
                lines.append(f"{'':<18} read {table}: {_read_summary(stats)}")
            streams = _streams_summary(j.details)
            if streams:
                lines.append(f"{'':<18} {streams}")
            for changed in j.details.get("changed_files") or []:
                lines.append(f"{'':<18} quarantined file {changed['path']}: {changed['reason']}")
            rec = j.details.get("reconciliation")
            if rec:
                mark = "ok" if rec["reconciled"] else "MISMATCH"
                lines.append(
                    f"{'':<18} reconciliation {mark}: input {rec['input']} = accepted "
                    f"{rec['accepted']} + quarantined {rec['quarantined']}"
                )
            if j.details.get("cost"):
                lines.append(f"{'':<18} cost: {cost_summary(j.details['cost'])}")
            if j.error:
                lines.append(f"{'':<18} error: {j.error}")
        if self.cost:
            lines.append(f"run cost: {cost_summary(self.cost)}")
        return "\n".join(lines)


def cost_summary(cost: dict[str, Any]) -> str:
    """``12.5 core-s (spot 80%), est. $0.0123 (on-demand only $0.0300)``: one estimate of
    :mod:`lakehouse.pipeline.cost` on one line."""
    text = f"{cost.get('core_s', 0):.1f} core-s"
    if cost.get("spot_share") is not None and cost.get("spot_core_s"):
        text += f" (spot {cost['spot_share']:.0%})"
    if cost.get("usd") is not None:
        text += f", est. ${cost['usd']:.4f}"
        if cost.get("on_demand_usd") is not None and cost["on_demand_usd"] != cost["usd"]:
            text += f" (on-demand only ${cost['on_demand_usd']:.4f})"
    return text


def _read_summary(stats: dict[str, Any]) -> str:
    parts = []
    if "files_read" in stats:
        parts.append(f"files {stats['files_read']}/{stats.get('files_total', '?')}")
    if "partitions_read" in stats:
        parts.append(f"partitions {stats['partitions_read']}/{stats.get('partitions_total', '?')}")
    return ", ".join(parts) or json.dumps(stats, default=str)


def _streams_summary(details: dict[str, Any]) -> str:
    """One line: no-op, or per source the increments read (id, offsets) and rows. A job
    without streams that sets ``noop`` (``maintain``) prints its ``noop_reason``."""
    if "increments" not in details:
        return (
            f"no-op: {details.get('noop_reason', 'nothing to do')}" if details.get("noop") else ""
        )
    if details.get("noop"):
        return "no-op: nothing new in any source"
    parts = []
    for src in details["increments"]:
        incs = src.get("increments") or []
        if src.get("skipped"):
            parts.append(f"{src['source']}: {src['skipped']}")
        elif incs:
            ids = ",".join(str(i["increment"]) for i in incs)
            replayed = " (replayed)" if any(i.get("replayed") for i in incs) else ""
            parts.append(f"{src['source']} #{ids} {src.get('rows_read', 0)} rows{replayed}")
        else:
            parts.append(f"{src['source']}: nothing new")
    return "increments: " + "; ".join(parts)
