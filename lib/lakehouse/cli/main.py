"""The ``lakehouse`` command: run declared jobs, inspect the configuration, roll back, submit.

Examples
--------
``lakehouse run all``             every declared job, in dependency order (``local`` env)
``lakehouse run silver_orders``   one job
``lakehouse run silver_customers --full-refresh``  rebuild it and everything downstream
``lakehouse run all --continuous --trigger 1m``  keep the streams running until SIGTERM
``lakehouse --env emr run all``   the pipeline with the EMR overlay
``lakehouse jobs``                the declared jobs in run order, with inputs and outputs
``lakehouse tables``              the declared tables: layer, location, description, writers
``lakehouse check``               every declared table's data files are there (or how to fix it)
``lakehouse runs``                the run history (``runs show <id>``, ``runs diff <a> <b>``)
``lakehouse unlock``              remove the data root's run lock left by a run that died
``lakehouse --env kubernetes config``  print the validated configuration
``lakehouse submit --help``       build artifacts and submit them (spark-submit, EMR, k8s)
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from lakehouse.cli.check import add_parser as add_check_parser
from lakehouse.cli.report import add_parser as add_report_parser
from lakehouse.cli.runs import add_parser as add_runs_parser
from lakehouse.config import ConfigError, Settings, check_data_root, load_config
from lakehouse.pipeline import (
    JobFailedError,
    JobGraphError,
    JobRegistry,
    UnknownJobError,
    full_refresh,
    new_batch_id,
    run_continuous,
    run_pipeline,
)
from lakehouse.pipeline.incremental import Trigger
from lakehouse.pipeline.lock import RunLock, RunLockedError, lock_path, read_lock, remove_lock
from lakehouse.pipeline.metrics import export_metrics
from lakehouse.pipeline.progress import RunProgress

__all__ = ["main"]

log = logging.getLogger("lakehouse")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lakehouse", description=__doc__.split("\n")[0])
    p.add_argument("--env", default="local", help="environment overlay (conf/env/<env>.yaml)")
    p.add_argument("--conf-dir", default=None, help="configuration directory (default: ./conf)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run declared jobs in dependency order")
    r.add_argument(
        "jobs", nargs="+", metavar="JOB", help="job names (see `lakehouse jobs`), or all"
    )
    r.add_argument("--batch-id", default=None, help="batch id (default: time-based, unique)")
    r.add_argument(
        "--downstream", action="store_true", help="also run every job downstream of the given ones"
    )
    refresh = r.add_mutually_exclusive_group()
    refresh.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the given jobs' tables, and every job downstream, from their sources",
    )
    refresh.add_argument(
        "--full-refresh-all", action="store_true", help="rebuild every table from the landing files"
    )
    r.add_argument(
        "--continuous",
        action="store_true",
        help="after catching up, keep the jobs' streams running until SIGTERM / Ctrl-C",
    )
    r.add_argument(
        "--trigger",
        default="1m",
        metavar="INTERVAL",
        help="with --continuous: how often streams check for new data (30s, 1m, 5m; default 1m)",
    )

    sub.add_parser("jobs", help="list the declared jobs in run order with inputs and outputs")
    sub.add_parser("tables", help="list the declared tables: layer, location, writers")
    sub.add_parser("config", help="print the validated configuration as JSON")

    add_check_parser(sub)
    add_runs_parser(sub)
    add_report_parser(sub)
    sub.add_parser("unlock", help="remove the data root's run lock (after a run died holding it)")

    rb = sub.add_parser("rollback", help="restore tables to the version before a run")
    rb.add_argument("--batch-id", required=True, help="the run (batch id) to undo")
    rb.add_argument("--table", dest="tables", action="append", default=[], help="repeatable")
    rb.add_argument("--dry-run", action="store_true", help="print what would be done")
    rb.add_argument("--force", action="store_true", help="also undo later runs' commits")
    return p


def _selected(registry: JobRegistry, names: Sequence[str], downstream: bool) -> list[str]:
    """The jobs to run, in order: ``all`` is every declared job."""
    if list(names) == ["all"]:
        return registry.order()
    chosen = {*names}
    if downstream:
        for name in names:
            chosen.update(registry.downstream(name))
    return registry.order(chosen)


def _run(
    settings: Settings, jobs: Sequence[str], args: argparse.Namespace, refresh: Sequence[str]
) -> int:
    from lakehouse.spark.session import build_spark_session

    trigger = Trigger.every(args.trigger) if args.continuous else None
    spark = build_spark_session(settings)
    spark.sparkContext.setLogLevel("INFO" if args.verbose else "WARN")  # -v: Spark's INFO too
    batch = args.batch_id or new_batch_id()
    try:
        with RunLock(spark, lock_path(settings), batch):
            if refresh:
                deleted = full_refresh(spark, settings, refresh)
                print(f"full refresh of {', '.join(refresh)}: {len(deleted)} paths deleted")
            if trigger is not None:
                report = run_continuous(
                    spark, settings, trigger=trigger, stop=_stop_on_signals(), jobs=jobs,
                    batch_id=batch,
                )  # fmt: skip
            else:
                total = sum(1 for j in jobs if settings.job(j).enabled)
                heartbeat = settings.progress.heartbeat_seconds
                with RunProgress(spark, total=total, heartbeat_s=heartbeat) as progress:
                    report = run_pipeline(
                        spark, settings, jobs=jobs, batch_id=batch, progress=progress
                    )
        code = 0
    except RunLockedError as exc:
        print(f"lakehouse: {exc}", file=sys.stderr)
        return 1
    except JobFailedError as exc:
        report = exc.report
        print(f"lakehouse: job {exc.job} failed: {exc.reason}", file=sys.stderr)
        code = 1
    report.finished_at = datetime.now(UTC).isoformat()
    print(report.render())
    written = report.write(settings.reports_path)
    if written:
        print(f"run report: {written}")
    for target in export_metrics(settings, report):
        print(f"metrics: {target}")
    return code


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: continuous runs stop at an increment boundary."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping the streams at the next increment boundary", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _list_jobs(registry: JobRegistry) -> int:
    for name in registry.order():
        job = registry.jobs[name]
        state = "" if job.enabled else "  (disabled)"
        print(f"{name}{state}  [{job.module}]")
        if job.description:
            print(f"    {job.description}")
        print(f"    inputs:  {', '.join(job.inputs) or '-'}")
        print(f"    outputs: {', '.join(job.outputs) or '-'}")
    return 0


def _list_tables(settings: Settings) -> int:
    writers: dict[str, list[str]] = {}
    for name, job in settings.jobs.items():
        for output in job.outputs:
            writers.setdefault(output, []).append(name)
    for name, spec in sorted(settings.tables.items()):
        source = "external" if spec.external else ", ".join(writers.get(name, [])) or "-"
        print(f"{name}  [{spec.layer}]  {settings.table_path(name)}")
        if spec.description:
            print(f"    {spec.description}")
        print(f"    written by: {source}")
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_config(args.env, conf_dir=args.conf_dir)
    if args.command in ("rollback", "check"):
        # one clear error up front for a data root that is a file (a mistyped
        # LAKEHOUSE_DATA_ROOT); `run` also needs the landing folder (see main)
        check_data_root(settings, require_landing=False)
    return settings


def _command(args: argparse.Namespace, settings: Settings) -> int | None:
    """Commands that need no job graph; None for the others."""
    if args.command == "config":
        from lakehouse.redaction import redact_mapping

        print(json.dumps(redact_mapping(settings.model_dump()), indent=2, default=str))
        return 0
    if args.command == "check":
        from lakehouse.cli.check import run_check

        return run_check(settings, args.tables)
    if args.command == "rollback":
        from lakehouse.cli.rollback import run_rollback

        return run_rollback(
            settings,
            batch_id=args.batch_id,
            tables=args.tables,
            dry_run=args.dry_run,
            force=args.force,
        )
    if args.command == "runs":
        from lakehouse.cli.runs import run_runs

        return run_runs(settings, args)
    if args.command == "report":
        from lakehouse.cli.report import run_report

        return run_report(settings, args)
    if args.command == "tables":
        return _list_tables(settings)
    if args.command == "unlock":
        return _unlock(settings)
    return None


def _unlock(settings: Settings) -> int:
    from lakehouse.spark.session import build_spark_session

    spark = build_spark_session(settings)
    path = lock_path(settings)
    held = read_lock(spark, path)
    if held is None:
        print(f"no run lock at {path}")
        return 0
    remove_lock(spark, path)
    print(f"removed the run lock of batch {held.get('batch_id')!r} ({held.get('owner')}): {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["submit"]:  # package once, submit anywhere: see lakehouse.cli.submit
        from lakehouse.cli.submit import main as submit_main

        return submit_main(raw[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # py4j logs every callback (each streaming increment) at INFO
        logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"lakehouse: {exc}", file=sys.stderr)
        return 2
    done = _command(args, settings)
    if done is not None:
        return done
    try:
        registry = JobRegistry.from_settings(settings)
        if args.command == "jobs":
            return _list_jobs(registry)
        every = list(args.jobs) == ["all"] or args.full_refresh_all
        jobs = _selected(
            registry, ["all"] if every else args.jobs, args.downstream or args.full_refresh
        )
        refresh = jobs if (args.full_refresh or args.full_refresh_all) else []
        if args.continuous:
            Trigger.every(args.trigger)  # a bad interval is a usage error, before Spark starts
        # a data root that is a file or has no landing folder (a mistyped
        # LAKEHOUSE_DATA_ROOT) is one clear error, instead of an empty "ok" run
        check_data_root(settings)
    except (JobGraphError, UnknownJobError, ValueError, ConfigError) as exc:
        print(f"lakehouse: {exc}", file=sys.stderr)
        return 2
    return _run(settings, jobs, args, refresh)


if __name__ == "__main__":
    sys.exit(main())
