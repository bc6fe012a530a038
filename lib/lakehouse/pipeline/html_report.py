"""One run as a self-contained HTML page (``lakehouse report <id> --html out.html``).

No script, no stylesheet or font from the network: the charts are inline SVG. The page
shows, from the run's JSON report (:class:`~lakehouse.pipeline.history.RunRecord`) and,
where a Spark session can read them, the quality-results and quarantine tables:

* a timeline: one bar per job from its start to its end, and under it the Spark stages
  it ran (the run report's ``stages``: submission to completion, from Spark's status
  store), each with its name, tasks and executor time as a tooltip;
* the row funnel per layer: rows in, accepted, quarantined per job, and the quarantine
  reasons of the run (rows per reason, from the quarantine tables);
* the expectation results of the run (passed and failing rows per expectation);
* the quality trend over the last runs: failing rows per expectation per run, from the
  quality-results table;
* the Delta version each job left in each table it wrote, and the files and partitions it
  read per table;
* the estimated cost per job and of the run (:mod:`lakehouse.pipeline.cost`): executor
  core-seconds, spot share and, when priced, the estimate and its on-demand-only figure.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakehouse.config import Settings
    from lakehouse.pipeline.history import RunRecord
    from lakehouse.pipeline.report import JobResult

__all__ = ["TrendPoint", "quality_trend", "quarantine_reasons", "render_html"]

WIDTH, LABEL, ROW = 960, 170, 34
COLORS = ("#3b6ea5", "#d1495b", "#edae49", "#66a182", "#8d6a9f", "#00798c", "#e07a5f", "#555")
LAYERS = ("bronze", "silver", "gold", "meta", "quarantine", "other")


@dataclass(frozen=True)
class TrendPoint:
    """Rows passing and failing one expectation (``table.expectation``) in one run."""

    run_id: str
    expectation: str
    passed: int
    failed: int


# --------------------------------------------------------------------------- data


def quality_trend(
    spark: SparkSession, settings: Settings, run_ids: Sequence[str]
) -> list[TrendPoint]:
    """Per run in ``run_ids`` and expectation: rows passed and failed (quality_results)."""
    from pyspark.sql import functions as F

    from lakehouse.spark.delta import DeltaTableRef

    if "quality_results" not in settings.tables:
        return []
    table = DeltaTableRef.for_path(spark, settings.table_path("quality_results"))
    if not table.exists() or not run_ids:
        return []
    of_runs = F.lit(False)
    for run_id in run_ids:
        of_runs = of_runs | _of_run(F.col("batch_id"), run_id)
    rows = (
        table.read()
        .where(of_runs)
        .groupBy("batch_id", "table", "expectation")
        .agg(F.sum("passed").alias("passed"), F.sum("failed").alias("failed"))
        .collect()
    )
    totals: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        run = max((i for i in run_ids if _is_of_run(r["batch_id"], i)), key=len)
        entry = totals.setdefault((run, f"{r['table']}.{r['expectation']}"), [0, 0])
        entry[0] += int(r["passed"])
        entry[1] += int(r["failed"])
    return [TrendPoint(run, name, p, f) for (run, name), (p, f) in sorted(totals.items())]


def _is_of_run(batch_id: str, run_id: str) -> bool:
    """Whether a row's ``batch_id`` is the run's: its id, or its id and an increment
    (``<run>.<source>...``, as the quality results record them)."""
    return batch_id == run_id or batch_id.startswith(run_id + ".")


def _of_run(column: Any, run_id: str) -> Any:
    """:func:`_is_of_run` as a Spark condition."""
    return (column == run_id) | column.startswith(run_id + ".")


def quarantine_reasons(
    spark: SparkSession, settings: Settings, run_id: str
) -> dict[str, dict[str, int]]:
    """Per quarantine table: rows the run quarantined per reason."""
    from pyspark.sql import functions as F

    from lakehouse.spark.delta import DeltaTableRef

    out: dict[str, dict[str, int]] = {}
    for name, table in settings.tables.items():
        ref = DeltaTableRef.for_path(spark, settings.table_path(name))
        if table.layer != "quarantine" or not ref.exists():
            continue
        rows = ref.read().where(_of_run(F.col("batch_id"), run_id))
        counts = {r["reason"]: int(r["count"]) for r in rows.groupBy("reason").count().collect()}
        if counts:
            out[name] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    return out


# --------------------------------------------------------------------------- svg helpers


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _rect(x: float, y: float, w: float, h: float, fill: str, cls: str, title: str) -> str:
    return (
        f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 1.0):.1f}" '
        f'height="{h:.1f}" fill="{fill}"><title>{_e(title)}</title></rect>'
    )


def _text(x: float, y: float, text: object, *, anchor: str = "start", size: int = 12) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}">{_e(text)}</text>'
    )


def _svg(svg_id: str, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg id="{svg_id}" role="img" aria-label="{_e(label)}" width="{WIDTH}" '
        f'height="{height:.0f}" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(body)}</svg>'
    )


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


# --------------------------------------------------------------------------- sections


def _spans(record: RunRecord) -> list[tuple[JobResult, float, float]]:
    """(job, start, end) in seconds from the run's start; jobs of reports without start
    times are laid out one after the other."""
    t0 = record.started_at.timestamp()
    cursor, out = 0.0, []
    for job in record.jobs:
        started = _ts(job.started_at)
        start = started - t0 if started is not None else cursor
        out.append((job, start, start + job.duration_s))
        cursor = start + job.duration_s
    return out


def _timeline(record: RunRecord) -> str:
    spans = _spans(record)
    total = max([end for _, _, end in spans] + [1.0])
    scale = (WIDTH - LABEL - 20) / total
    body: list[str] = []
    for i, (job, start, end) in enumerate(spans):
        y = 10 + i * (ROW + 14)
        fill = COLORS[0] if job.status == "ok" else COLORS[1]
        body.append(_text(4, y + 14, job.job))
        tip = f"{job.job}: {job.status}, {job.duration_s:.1f} s"
        body.append(_rect(LABEL + start * scale, y, (end - start) * scale, 16, fill, "job", tip))
        t0 = record.started_at.timestamp()
        for stage in job.details.get("stages") or []:
            s_start = stage["submitted_ms"] / 1000 - t0
            s_len = (stage["completed_ms"] - stage["submitted_ms"]) / 1000
            tip = (
                f"stage {stage['stage_id']} ({stage['name']}): {s_len:.2f} s, "
                f"{stage['tasks']} tasks, executor time {stage['executor_run_ms'] / 1000:.2f} s"
            )
            body.append(
                _rect(LABEL + s_start * scale, y + 20, s_len * scale, 8, COLORS[3], "stage", tip)
            )
    axis_y = 10 + len(spans) * (ROW + 14)
    for k in range(6):
        x = LABEL + (WIDTH - LABEL - 20) * k / 5
        body.append(_text(x, axis_y, f"{total * k / 5:.0f} s", anchor="middle", size=10))
    return _svg("timeline", axis_y + 8, body, "timeline of the run's jobs and Spark stages")


def _layer(settings: Settings | None, job: JobResult) -> str:
    if settings is None or job.job not in settings.jobs:
        return "other"
    layers = [
        settings.tables[t].layer for t in settings.jobs[job.job].outputs if t in settings.tables
    ]
    return next((layer for layer in LAYERS if layer in layers), "other")


def _funnel(record: RunRecord, settings: Settings | None) -> str:
    jobs = sorted(record.jobs, key=lambda j: LAYERS.index(_layer(settings, j)))
    biggest = max([j.rows_in for j in jobs] + [1])
    scale = (WIDTH - LABEL - 120) / biggest
    body: list[str] = []
    for i, job in enumerate(jobs):
        y = 8 + i * 62
        rec = job.details.get("reconciliation") or {}
        accepted = rec.get("accepted", job.rows_in - job.rows_quarantined)
        body.append(_text(4, y + 12, f"{_layer(settings, job)} · {job.job}"))
        bars = [
            ("in", job.rows_in, COLORS[0]),
            ("accepted", int(accepted), COLORS[3]),
            ("quarantined", job.rows_quarantined, COLORS[1]),
        ]
        for k, (label, n, color) in enumerate(bars):
            by = y + k * 17
            body.append(_rect(LABEL, by, n * scale, 14, color, "funnel", f"{job.job} {label}: {n}"))
            body.append(_text(LABEL + n * scale + 6, by + 11, f"{label} {n:,}", size=11))
    return _svg("funnel", 8 + len(jobs) * 62, body, "rows in, accepted and quarantined per job")


def _reasons(reasons: Mapping[str, Mapping[str, int]]) -> str:
    if not reasons:
        return "<p>No rows were quarantined in this run.</p>"
    rows = "".join(
        f"<tr><td>{_e(table)}</td><td>{_e(reason)}</td><td class=num>{n:,}</td></tr>"
        for table, counts in reasons.items()
        for reason, n in counts.items()
    )
    return (
        '<table id="reasons"><tr><th>quarantine table</th><th>reason</th><th>rows</th></tr>'
        f"{rows}</table>"
    )


def _expectations(record: RunRecord) -> str:
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for job in record.jobs:
        for check in job.details.get("quality") or []:
            key = (str(check["table"]), str(check["name"]))
            entry = totals.setdefault(key, {"action": check["action"], "passed": 0, "failed": 0})
            entry["passed"] += int(check["passed"])
            entry["failed"] += int(check["failed"])
    if not totals:
        return "<p>No expectation was checked in this run.</p>"
    rows = "".join(
        f'<tr class="{"bad" if e["failed"] else "good"}"><td>{_e(t)}</td><td>{_e(n)}</td>'
        f"<td>{_e(e['action'])}</td><td class=num>{e['passed']:,}</td>"
        f"<td class=num>{e['failed']:,}</td></tr>"
        for (t, n), e in sorted(totals.items())
    )
    return (
        '<table id="expectations"><tr><th>table</th><th>expectation</th><th>action</th>'
        f"<th>rows passed</th><th>rows failed</th></tr>{rows}</table>"
    )


def _trend(points: Sequence[TrendPoint], run_order: Sequence[str]) -> str:
    runs = [r for r in run_order if any(p.run_id == r for p in points)]
    if not runs:
        return "<p>No quality results recorded for these runs.</p>"
    names = sorted({p.expectation for p in points})
    failed = {(p.run_id, p.expectation): p.failed for p in points}
    top = max([p.failed for p in points] + [1])
    left, height = 60, 220
    step = (WIDTH - left - 260) / max(len(runs) - 1, 1)
    body = [f'<line x1="{left}" y1="{height}" x2="{WIDTH - 250}" y2="{height}" stroke="#999"/>']
    body.append(_text(left - 6, 14, f"{top:,}", anchor="end", size=10))
    body.append(_text(left - 6, height, "0", anchor="end", size=10))
    for i, run in enumerate(runs):
        body.append(_text(left + i * step, height + 16, run[:15], anchor="middle", size=10))
    for k, name in enumerate(names):
        color = COLORS[k % len(COLORS)]
        pts = [
            (left + i * step, height - failed.get((run, name), 0) / top * (height - 14))
            for i, run in enumerate(runs)
        ]
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        body.append(
            f'<polyline class="trend" fill="none" stroke="{color}" stroke-width="2" '
            f'points="{coords}"><title>{_e(name)}</title></polyline>'
        )
        for (x, y), run in zip(pts, runs, strict=True):
            tip = f"{name} in {run}: {failed.get((run, name), 0)} rows failed"
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{_e(tip)}</title>'
                "</circle>"
            )
        body.append(_rect(WIDTH - 240, 10 + k * 16, 10, 10, color, "legend", name))
        body.append(_text(WIDTH - 224, 19 + k * 16, name, size=11))
    return _svg("trend", height + 24, body, "failing rows per expectation over the last runs")


def _tables(record: RunRecord) -> str:
    rows = []
    for job in record.jobs:
        for table, version in job.tables.items():
            rows.append(
                f"<tr><td>{_e(job.job)}</td><td>wrote</td><td>{_e(table)}</td>"
                f"<td>{'v' + str(version) if version is not None else 'nothing'}</td></tr>"
            )
        for table, stats in job.reads.items():
            files = f"{stats.get('files_read', '?')}/{stats.get('files_total', '?')} files"
            parts = f"{stats.get('partitions_read', '?')}/{stats.get('partitions_total', '?')}"
            rows.append(
                f"<tr><td>{_e(job.job)}</td><td>read</td><td>{_e(table)}</td>"
                f"<td>{_e(files)}, {_e(parts)} partitions</td></tr>"
            )
    return (
        '<table id="tables"><tr><th>job</th><th></th><th>table</th>'
        f"<th>Delta version / files and partitions read</th></tr>{''.join(rows)}</table>"
    )


def _money(value: object) -> str:
    return f"${value:.4f}" if isinstance(value, int | float) else "&ndash;"


def _cost_row(name: str, cost: Mapping[str, Any], cls: str = "") -> str:
    share = cost.get("spot_share")
    spot = "&ndash;" if share is None else f"{share:.0%}"
    return (
        f"<tr{cls}><td>{_e(name)}</td><td class=num>{cost.get('core_s', 0):,.1f}</td>"
        f"<td class=num>{spot}</td>"
        f"<td class=num>{_money(cost.get('usd'))}</td>"
        f"<td class=num>{_money(cost.get('on_demand_usd'))}</td></tr>"
    )


def _cost(record: RunRecord) -> str:
    rows = [_cost_row(j.job, j.details["cost"]) for j in record.jobs if j.details.get("cost")]
    if not rows:
        return "<p>No cost was recorded for this run.</p>"
    if record.cost:
        rows.append(_cost_row("run", record.cost, ' class="total"'))
    return (
        '<table id="cost"><tr><th>job</th><th>executor core-s</th><th>spot share</th>'
        f"<th>estimated cost</th><th>on-demand only</th></tr>{''.join(rows)}</table>"
    )


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px}
th{background:#f3f3f3;text-align:left}.num{text-align:right}
tr.bad td{background:#fbe9eb}tr.good td{background:#eef7f1}tr.total td{font-weight:bold}
.summary span{display:inline-block;margin-right:22px}
.ok{color:#2a7a4b;font-weight:bold}.failed{color:#b3261e;font-weight:bold}
svg text{font-family:inherit;fill:#222}
"""


def render_html(
    record: RunRecord,
    *,
    settings: Settings | None = None,
    trend: Sequence[TrendPoint] = (),
    trend_runs: Sequence[str] = (),
    reasons: Mapping[str, Mapping[str, int]] | None = None,
) -> str:
    """The page for ``record`` (see the module docstring); ``trend_runs`` oldest first."""
    summary = (
        f'<p class="summary"><span>env <b>{_e(record.env)}</b></span>'
        f"<span>started {_e(record.started_at.isoformat(timespec='seconds'))}</span>"
        f"<span>duration {record.duration_s:.1f} s</span>"
        f'<span>status <b class="{_e(record.status)}">{_e(record.status)}</b></span>'
        f"<span>rows in {record.rows_in:,} · written {record.rows_written:,} · "
        f"quarantined {record.rows_quarantined:,}</span></p>"
    )
    errors = "".join(
        f"<p class=failed>{_e(j.job)}: {_e(j.error)}</p>" for j in record.jobs if j.error
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>lakehouse run {_e(record.run_id)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Run {_e(record.run_id)}</h1>{summary}{errors}",
        "<h2>Timeline: jobs and their Spark stages</h2>",
        _timeline(record),
        "<h2>Rows per layer: in, accepted, quarantined</h2>",
        _funnel(record, settings),
        "<h3>Quarantine reasons</h3>",
        _reasons(reasons or {}),
        "<h2>Expectations</h2>",
        _expectations(record),
        f"<h2>Quality trend: failing rows per expectation, last {len(trend_runs)} runs</h2>",
        _trend(trend, trend_runs),
        "<h2>Tables written and read</h2>",
        _tables(record),
        "<h2>Cost: executor core-seconds and estimate</h2>",
        _cost(record),
        "</body></html>",
    ]
    return "\n".join(parts)
