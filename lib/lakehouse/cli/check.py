"""``lakehouse check``: are the declared Delta tables whole (no live data file missing)?

The work is :func:`lakehouse.tuning.health.check_table`; this module adds the subcommand,
prints one report per table and turns the outcome into an exit code::

    lakehouse check                 # every declared table
    lakehouse check orders fact_sales

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="lakehouse")
>>> add_parser(parser.add_subparsers(dest="command"))
>>> parser.parse_args(["check", "orders"]).tables
['orders']
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lakehouse.config import Settings
from lakehouse.spark.session import build_spark_session
from lakehouse.tuning.health import check_table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["add_parser", "run_check"]


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``check`` subcommand (its positional ``tables``) to ``subparsers``."""
    p = subparsers.add_parser(
        "check", help="check declared Delta tables for missing data files, and how to fix them"
    )
    p.add_argument(
        "tables", nargs="*", metavar="TABLE", help="table names (default: every declared table)"
    )


def run_check(
    settings: Settings, tables: Sequence[str], *, spark: SparkSession | None = None
) -> int:
    """Check ``tables`` (every declared table when empty) and print a report per table.

    Tables with no Delta table yet are reported and skipped. Builds (and stops) its own
    session unless ``spark`` is given. Exit codes: 0 every table whole, 1 a table has
    missing files or cannot be read (the report names them and the fixes), 2 an unknown
    table name.
    """
    names = list(tables) or sorted(settings.tables)
    unknown = [n for n in names if n not in settings.tables]
    if unknown:
        print(
            f"lakehouse check: unknown tables {unknown}; known: {sorted(settings.tables)}",
            file=sys.stderr,
        )
        return 2
    session = spark or build_spark_session(settings, app_name="lakehouse-check")
    unhealthy = 0
    try:
        for name in names:
            health = check_table(session, settings.table_path(name), table=name)
            if health.error == "no Delta table there":
                print(f"{name}: no Delta table yet at {health.path}; skipped")
                continue
            print(health.describe())
            unhealthy += not health.healthy
    finally:
        if spark is None:
            session.stop()
    if unhealthy:
        print(f"lakehouse check: {unhealthy} of {len(names)} tables need repair", file=sys.stderr)
        return 1
    return 0
