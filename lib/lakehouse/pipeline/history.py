"""Run history: list, show and compare past runs from their JSON reports.

Every ``lakehouse run`` writes ``<reports>/run_<run id>.json`` (:meth:`RunReport.write`,
``paths.reports``, ``<data_root>/_reports`` by default). The history is those files: they
already hold everything a listing needs, and reading them needs no Spark session, so
``lakehouse runs`` answers in well under a second. A report that cannot be read is named in
a warning and left out of the listing; nothing is deleted.

Examples
--------
>>> rec = RunRecord.from_dict({"run_id": "b1", "env": "local",
...     "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:05+00:00",
...     "jobs": [{"job": "j", "rows_in": 3, "rows_written": 2, "rows_quarantined": 1,
...               "duration_s": 60.0}]})
>>> (rec.status, rec.duration_s, rec.rows_in, rec.rows_written, rec.rows_quarantined)
('ok', 65.0, 3, 2, 1)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.config import parse_duration
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.report import JobResult, RunReport

__all__ = [
    "Freshness",
    "HistoryError",
    "RunRecord",
    "check_freshness",
    "find_run",
    "last_writes",
    "load_runs",
    "render_diff",
    "render_freshness",
    "render_runs",
]

if TYPE_CHECKING:
    from lakehouse.config import Settings

log = logging.getLogger(__name__)


class HistoryError(LakehouseError, ValueError):
    """A run that is not in the history, or a report that cannot be read."""


@dataclass(frozen=True)
class RunRecord:
    """One past run, as its report recorded it."""

    run_id: str
    env: str
    started_at: datetime
    finished_at: datetime | None
    jobs: list[JobResult] = field(default_factory=list)
    source: str = ""
    #: The run's estimated cost (empty in reports written before it was recorded).
    cost: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "") -> RunRecord:
        known = {f.name for f in fields(JobResult)}
        jobs = [JobResult(**{k: v for k, v in j.items() if k in known}) for j in data["jobs"]]
        finished = data.get("finished_at")
        return cls(
            run_id=str(data["run_id"]),
            env=str(data["env"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(finished) if finished else None,
            jobs=jobs,
            source=source,
            cost=dict(data.get("cost") or {}),
        )

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """Read one report file; :class:`HistoryError` names the file if it cannot."""
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")), source=str(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HistoryError(f"run report {path}: cannot be read: {exc}") from exc

    @property
    def status(self) -> str:
        failed = [j.job for j in self.jobs if j.status != "ok"]
        return "ok" if not failed else "failed"

    @property
    def duration_s(self) -> float:
        """Wall time from start to the report (older reports: the jobs' summed time)."""
        if self.finished_at is not None:
            return round((self.finished_at - self.started_at).total_seconds(), 1)
        return round(sum(j.duration_s for j in self.jobs), 1)

    @property
    def rows_in(self) -> int:
        return sum(j.rows_in for j in self.jobs)

    @property
    def rows_written(self) -> int:
        return sum(j.rows_written for j in self.jobs)

    @property
    def rows_quarantined(self) -> int:
        return sum(j.rows_quarantined for j in self.jobs)

    def report(self) -> RunReport:
        """The run as a :class:`RunReport` (to print it the way the run did)."""
        return RunReport(
            run_id=self.run_id,
            env=self.env,
            started_at=self.started_at.isoformat(),
            jobs=list(self.jobs),
            finished_at=self.finished_at.isoformat() if self.finished_at else None,
            cost=dict(self.cost),
        )


def load_runs(directory: str | Path) -> list[RunRecord]:
    """Every readable run report in ``directory``, newest first (unreadable: warned)."""
    root = Path(directory)
    if not root.is_dir():
        return []
    records = []
    for path in sorted(root.glob("run_*.json")):
        try:
            records.append(RunRecord.load(path))
        except HistoryError as exc:
            log.warning("%s (left out of the history)", exc)
    return sorted(records, key=lambda r: r.started_at, reverse=True)


def find_run(records: Sequence[RunRecord], run_id: str, *, directory: str | Path) -> RunRecord:
    """The run ``run_id`` (or the one run whose id starts with it)."""
    exact = [r for r in records if r.run_id == run_id]
    matches = exact or [r for r in records if r.run_id.startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise HistoryError(
            f"no run {run_id!r} in {directory} ({len(records)} runs; `lakehouse runs` lists them)"
        )
    ids = ", ".join(r.run_id for r in matches)
    raise HistoryError(f"run id {run_id!r} is ambiguous in {directory}: {ids}")


def render_runs(records: Sequence[RunRecord]) -> str:
    """One line per run: id, env, start, duration, status, rows."""
    header = (
        f"{'run':<34} {'env':<8} {'started (UTC)':<19} {'secs':>8} {'status':<7} "
        f"{'rows in':>10} {'written':>10} {'quarant.':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in records:
        lines.append(
            f"{r.run_id:<34} {r.env:<8} {r.started_at:%Y-%m-%d %H:%M:%S} {r.duration_s:>8.1f} "
            f"{r.status:<7} {r.rows_in:>10} {r.rows_written:>10} {r.rows_quarantined:>9}"
        )
    return "\n".join(lines)


def _change(a: float, b: float) -> str:
    if a == b:
        return "="
    if a == 0:
        return "new"
    return f"{(b - a) / a:+.0%}"


def render_diff(a: RunRecord, b: RunRecord) -> str:
    """Per job: time and rows of run ``a`` against run ``b`` (a job in one run only: '-')."""
    header = (
        f"{'job':<18} {'secs a':>8} {'secs b':>8} {'change':>7}  {'rows in a':>10} "
        f"{'rows in b':>10} {'written a':>10} {'written b':>10} {'quar. a':>8} {'quar. b':>8}"
        f"  status"
    )
    lines = [f"a = {a.run_id} ({a.env}), b = {b.run_id} ({b.env})", header, "-" * len(header)]
    jobs_a = {j.job: j for j in a.jobs}
    jobs_b = {j.job: j for j in b.jobs}
    names = list(jobs_a) + [n for n in jobs_b if n not in jobs_a]
    for name in names:
        ja, jb = jobs_a.get(name), jobs_b.get(name)
        if ja is None or jb is None:
            only = "a" if jb is None else "b"
            lines.append(f"{name:<18} only in run {only}")
            continue
        status = ja.status if ja.status == jb.status else f"{ja.status} -> {jb.status}"
        lines.append(
            f"{name:<18} {ja.duration_s:>8.1f} {jb.duration_s:>8.1f} "
            f"{_change(ja.duration_s, jb.duration_s):>7}  {ja.rows_in:>10} {jb.rows_in:>10} "
            f"{ja.rows_written:>10} {jb.rows_written:>10} {ja.rows_quarantined:>8} "
            f"{jb.rows_quarantined:>8}  {status}"
        )
    lines.append(
        f"{'run':<18} {a.duration_s:>8.1f} {b.duration_s:>8.1f} "
        f"{_change(a.duration_s, b.duration_s):>7}  {a.rows_in:>10} {b.rows_in:>10} "
        f"{a.rows_written:>10} {b.rows_written:>10} {a.rows_quarantined:>8} "
        f"{b.rows_quarantined:>8}  {a.status if a.status == b.status else a.status + ' -> ' + b.status}"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- freshness


def last_writes(records: Sequence[RunRecord]) -> dict[str, tuple[datetime, str]]:
    """Per table: when (the run's end) and in which run a job that succeeded last committed
    a new version of it. A run that left the version unchanged (a no-op) is not a write."""
    versions: dict[str, int] = {}
    out: dict[str, tuple[datetime, str]] = {}
    for record in sorted(records, key=lambda r: r.started_at):
        when = record.finished_at or record.started_at
        for job in record.jobs:
            for table, version in job.tables.items():
                if version is None:
                    continue
                if job.status == "ok" and version != versions.get(table):
                    out[table] = (when, record.run_id)
                versions[table] = version
    return out


@dataclass(frozen=True)
class Freshness:
    """One table's freshness objective against its last successful write."""

    table: str
    slo: timedelta
    last_write: datetime | None
    run_id: str | None
    age: timedelta | None

    @property
    def late(self) -> bool:
        return self.age is None or self.age > self.slo


def check_freshness(
    settings: Settings, records: Sequence[RunRecord], *, now: datetime
) -> list[Freshness]:
    """Every table with a ``freshness_slo``, against the run history (``now``: aware UTC)."""
    writes = last_writes(records)
    out = []
    for name, table in sorted(settings.tables.items()):
        if table.freshness_slo is None:
            continue
        when, run_id = writes.get(name, (None, None))
        age = None if when is None else now - when
        out.append(Freshness(name, parse_duration(table.freshness_slo), when, run_id, age))
    return out


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def render_freshness(results: Sequence[Freshness], *, runs: int) -> str:
    """One line per table: ok or LATE, the age of its last write against its objective."""
    lines = []
    for f in results:
        if f.last_write is None or f.age is None:
            lines.append(
                f"LATE {f.table}: no successful write in the {runs} runs of the history "
                f"(freshness_slo {_hours(f.slo)})"
            )
            continue
        mark = "LATE" if f.late else "ok  "
        lines.append(
            f"{mark} {f.table}: last written {_hours(f.age)} ago by run {f.run_id} "
            f"({f.last_write:%Y-%m-%d %H:%M} UTC); freshness_slo {_hours(f.slo)}"
        )
    return "\n".join(lines)
