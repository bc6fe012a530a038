"""``lakehouse rollback``: restore tables to the Delta version before a given run.

The work is :func:`lakehouse.writes.rollback.rollback_batch`; this module parses the
arguments, prints what was done and turns the outcome into an exit code. Also runnable on
its own::

    python -m lakehouse.cli.rollback --env local --batch-id 20260101T000000Z \\
        [--table orders ...] [--dry-run] [--force]

Examples
--------
>>> parse_args(["--batch-id", "b1", "--table", "orders", "--dry-run"]).tables
['orders']
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lakehouse.config import Settings, load_config
from lakehouse.spark.session import build_spark_session
from lakehouse.writes.rollback import RollbackError, rollback_batch

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["main", "parse_args", "run_rollback"]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Arguments of ``python -m lakehouse.cli.rollback``."""
    parser = argparse.ArgumentParser(
        prog="lakehouse rollback",
        description="Restore tables to the Delta version before a given run (batch id).",
    )
    parser.add_argument("--env", default="local", help="configuration environment")
    parser.add_argument("--batch-id", required=True, help="the run to undo")
    parser.add_argument(
        "--table", dest="tables", action="append", default=[], help="table name (repeatable)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be done")
    parser.add_argument("--force", action="store_true", help="also undo commits made after the run")
    return parser.parse_args(list(argv))


def run_rollback(
    settings: Settings,
    *,
    batch_id: str,
    tables: Sequence[str] = (),
    dry_run: bool = False,
    force: bool = False,
    spark: SparkSession | None = None,
) -> int:
    """Roll back ``batch_id`` and print what was done; return the process exit code.

    Every table is checked before any is changed (all or nothing, see
    :func:`~lakehouse.writes.rollback.rollback_batch`). Builds (and stops) its own session
    unless ``spark`` is given. Exit codes: 0 done (or already rolled back); 1 no table has
    commits of the batch (an unknown batch id, or one that has not run yet); 2 refused
    (:class:`~lakehouse.writes.rollback.RollbackError`: later commits, a damaged Delta log)
    or an unknown table. On 1 and 2 nothing was changed.
    """
    session = spark or build_spark_session(settings, app_name="lakehouse-rollback")
    try:
        results = rollback_batch(
            session, settings, batch_id, tables=tables, dry_run=dry_run, force=force
        )
    except (RollbackError, KeyError) as exc:
        print(f"rollback failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if spark is None:
            session.stop()
    if not any(r.run_versions for r in results):
        print(
            f"rollback failed: no table has commits of batch {batch_id} (an unknown batch "
            "id, or one that has not run yet); nothing was changed",
            file=sys.stderr,
        )
        return 1
    return 0


def main(
    argv: Sequence[str] | None = None,
    *,
    spark: SparkSession | None = None,
    settings: Settings | None = None,
) -> int:
    """Stand-alone entry point; see :func:`run_rollback`."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_rollback(
        settings or load_config(args.env),
        batch_id=args.batch_id,
        tables=args.tables,
        dry_run=args.dry_run,
        force=args.force,
        spark=spark,
    )


if __name__ == "__main__":
    sys.exit(main())
