"""``lakehouse runs``: the run history, from the JSON run reports (no Spark session)::

    lakehouse runs                 # the last 20 runs, newest first
    lakehouse runs --limit 5
    lakehouse runs show <id>       # one run, printed as the run printed it (an id prefix works)
    lakehouse runs diff <a> <b>    # per job: time and rows of run a against run b
    lakehouse runs --check-slo     # exit 1 if a table's last write is older than its freshness_slo

The history itself is :mod:`lakehouse.pipeline.history`.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="lakehouse")
>>> add_parser(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["runs", "diff", "a", "b"])
>>> (args.action, args.a, args.b)
('diff', 'a', 'b')
>>> parser.parse_args(["runs"]).action is None
True
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from lakehouse.config import Settings
from lakehouse.pipeline.history import (
    HistoryError,
    check_freshness,
    find_run,
    load_runs,
    render_diff,
    render_freshness,
    render_runs,
)

__all__ = ["add_parser", "run_runs"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``runs`` subcommand (``show``, ``diff``) to ``subparsers``."""
    p = subparsers.add_parser("runs", help="list past runs; show one; compare two")
    p.add_argument("--limit", type=_positive, default=20, help="runs to list (default 20)")
    p.add_argument(
        "--check-slo",
        action="store_true",
        help="check every table's freshness_slo; exit 1 naming the tables written too long ago",
    )
    actions = p.add_subparsers(dest="action")
    show = actions.add_parser("show", help="print one run's report")
    show.add_argument("run_id", help="run (batch) id, or a prefix of exactly one")
    diff = actions.add_parser("diff", help="per job: time and rows of run a against run b")
    diff.add_argument("a", help="run id (or unique prefix)")
    diff.add_argument("b", help="run id (or unique prefix)")


def run_runs(settings: Settings, args: argparse.Namespace) -> int:
    """Print the listing, one run or a comparison; 2 for an unknown or ambiguous run id.

    With ``--check-slo``: the freshness of every table with a ``freshness_slo``; 1 if one
    is late (or has no successful write in the history).
    """
    directory = settings.reports_path
    records = load_runs(directory)
    if args.check_slo:
        results = check_freshness(settings, records, now=datetime.now(UTC))
        if not results:
            print("no table declares a freshness_slo")
            return 0
        print(render_freshness(results, runs=len(records)))
        return 1 if any(f.late for f in results) else 0
    try:
        if args.action == "show":
            print(find_run(records, args.run_id, directory=directory).report().render())
        elif args.action == "diff":
            a = find_run(records, args.a, directory=directory)
            b = find_run(records, args.b, directory=directory)
            print(render_diff(a, b))
        elif not records:
            print(f"no runs in {directory}")
        else:
            print(render_runs(records[: args.limit]))
    except HistoryError as exc:
        print(f"lakehouse: {exc}", file=sys.stderr)
        return 2
    return 0
