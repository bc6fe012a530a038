"""``lakehouse rollback``: restore tables to the Delta version before a given run.

The work is :func:`lakehouse.writes.rollback.rollback_batch`; this module parses the
arguments, prints what was done and turns the outcome into an exit code. Once the tables
are back, it resets the file streams of the jobs that write them
(:func:`lakehouse.pipeline.reset_file_streams`), so the next run ingests the rolled-back
batch's landing files again. Also runnable on its own::

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
from lakehouse.pipeline.runner import reset_file_streams
from lakehouse.spark.session import build_spark_session
from lakehouse.writes.rollback import RollbackError, rollback_batch

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["main", "parse_args", "run_rollback"]

#: Result actions after which the batch is no longer in a table (or a dry run would take it out).
_UNDONE = ("restored", "emptied", "already rolled back", "dry-run")


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
        # the batch is (or would be) undone on these; "already rolled back" included, so a
        # rollback interrupted before this step finishes it when run again
        undone = [r.table for r in results if r.run_versions and r.action in _UNDONE]
        for path in reset_file_streams(session, settings, undone, dry_run=dry_run):
            verb = "would reset" if dry_run else "reset"
            print(
                f"{verb} file stream checkpoint {path}: the next run lists its landing "
                "files again and ingests those its ledger does not record"
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
