"""``lakehouse report``: one run as a self-contained HTML page::

    lakehouse report --html run.html               # the latest run
    lakehouse report 20261207T0930 --html run.html  # a run id or a unique prefix
    lakehouse report --html run.html --runs 20     # the quality trend over 20 runs (default 10)

The page is built by :mod:`lakehouse.pipeline.html_report` from the JSON run reports; a
Spark session reads the quality-results and quarantine tables for the trend and the
quarantine reasons.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="lakehouse")
>>> add_parser(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["report", "abc", "--html", "out.html"])
>>> (args.run_id, args.html, args.runs)
('abc', 'out.html', 10)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lakehouse.cli.runs import _positive
from lakehouse.config import Settings
from lakehouse.pipeline.history import HistoryError, find_run, load_runs

__all__ = ["add_parser", "run_report"]


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``report`` subcommand to ``subparsers``."""
    p = subparsers.add_parser("report", help="write one run as a self-contained HTML page")
    p.add_argument("run_id", nargs="?", help="run id or unique prefix (default: the latest)")
    p.add_argument("--html", required=True, help="the HTML file to write")
    p.add_argument(
        "--runs", type=_positive, default=10, help="runs in the quality trend (default 10)"
    )


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    """Write the page; 2 when there is no such run."""
    from lakehouse.pipeline.html_report import quality_trend, quarantine_reasons, render_html
    from lakehouse.spark.session import build_spark_session

    directory = settings.reports_path
    records = load_runs(directory)  # newest first
    try:
        if not records:
            raise HistoryError(f"no runs in {directory}")
        record = find_run(records, args.run_id, directory=directory) if args.run_id else records[0]
    except HistoryError as exc:
        print(f"lakehouse: {exc}", file=sys.stderr)
        return 2
    earlier = [r.run_id for r in records if r.started_at <= record.started_at][: args.runs]
    trend_runs = list(reversed(earlier))
    spark = build_spark_session(settings)
    page = render_html(
        record,
        settings=settings,
        trend=quality_trend(spark, settings, trend_runs),
        trend_runs=trend_runs,
        reasons=quarantine_reasons(spark, settings, record.run_id),
    )
    out = Path(args.html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"report of run {record.run_id}: {out}")
    return 0
