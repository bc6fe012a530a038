"""The ``lakehouse`` command: generate sample data, run jobs or the whole pipeline.

Examples
--------
``lakehouse pipeline``            generate landing data if there is none, run every job
``lakehouse run silver_orders``   run one job against the ``local`` environment
``lakehouse --env emr run all``   run the pipeline with the EMR overlay
``lakehouse generate --orders 1000000``
``lakehouse --env kubernetes config``  print the validated configuration
``lakehouse submit --help``       build artifacts and submit them (spark-submit, EMR, k8s)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from lakehouse.config import ConfigError, Settings, load_config
from lakehouse.pipeline.runner import PIPELINE, JobFailedError, new_batch_id, run_pipeline

__all__ = ["main"]

log = logging.getLogger("lakehouse")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lakehouse", description=__doc__.split("\n")[0])
    p.add_argument("--env", default="local", help="environment overlay (conf/env/<env>.yaml)")
    p.add_argument("--conf-dir", default=None, help="configuration directory (default: ./conf)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write deterministic sample landing files")
    g.add_argument("--orders", type=int, default=None, help="number of orders (default: config)")
    g.add_argument("--seed", type=int, default=None)

    r = sub.add_parser("run", help="run one job, or 'all' for the pipeline in order")
    r.add_argument("job", choices=[*PIPELINE, "all"])
    r.add_argument("--batch-id", default=None, help="batch id (default: time-based, unique)")

    pl = sub.add_parser("pipeline", help="generate data if missing, then run every job")
    pl.add_argument("--orders", type=int, default=None)
    pl.add_argument("--regenerate", action="store_true", help="rewrite landing files first")

    sub.add_parser("config", help="print the validated configuration as JSON")

    rb = sub.add_parser("rollback", help="restore tables to the version before a run")
    rb.add_argument("--batch-id", required=True, help="the run (batch id) to undo")
    rb.add_argument("--table", dest="tables", action="append", default=[], help="repeatable")
    rb.add_argument("--dry-run", action="store_true", help="print what would be done")
    rb.add_argument("--force", action="store_true", help="also undo later runs' commits")
    return p


def _generate(settings: Settings, orders: int | None, seed: int | None) -> dict[str, int]:
    from harness.generator import generate_landing

    gen = settings.generator
    landing = settings.landing_path
    if "://" in landing:
        raise SystemExit(f"generate writes local files only; landing is {landing}")
    stats = generate_landing(
        landing,
        orders=orders or gen.orders,
        customers=gen.customers,
        products=gen.products,
        days=gen.days,
        start_date=gen.start_date,
        seed=gen.seed if seed is None else seed,
        malformed_fraction=gen.malformed_fraction,
    )
    print(f"landing files written to {landing}: {json.dumps(stats)}")
    return stats


def _run(settings: Settings, jobs: Sequence[str], batch_id: str | None) -> int:
    from lakehouse.spark.session import build_spark_session

    spark = build_spark_session(settings)
    spark.sparkContext.setLogLevel("WARN")
    batch = batch_id or new_batch_id()
    try:
        report = run_pipeline(spark, settings, jobs=jobs, batch_id=batch)
        code = 0
    except JobFailedError as exc:
        report = exc.report
        print(f"lakehouse: job {exc.job} failed: {exc.reason}", file=sys.stderr)
        code = 1
    print(report.render())
    written = report.write(settings.reports_path)
    if written:
        print(f"run report: {written}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["submit"]:  # package once, submit anywhere: see lakehouse.deploy.spark_submit
        from lakehouse.deploy.spark_submit import main as submit_main

        return submit_main(raw[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_config(args.env, conf_dir=args.conf_dir)
    except ConfigError as exc:
        print(f"lakehouse: {exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        from lakehouse.redaction import redact_mapping

        print(json.dumps(redact_mapping(settings.model_dump()), indent=2, default=str))
        return 0
    if args.command == "rollback":
        from lakehouse.cli.rollback import run_rollback

        return run_rollback(
            settings,
            batch_id=args.batch_id,
            tables=args.tables,
            dry_run=args.dry_run,
            force=args.force,
        )
    if args.command == "generate":
        _generate(settings, args.orders, args.seed)
        return 0
    if args.command == "pipeline":
        landing = Path(settings.landing_path)
        if args.regenerate or not any(landing.glob("*/*")):
            _generate(settings, args.orders, None)
        return _run(settings, PIPELINE, None)
    jobs = PIPELINE if args.job == "all" else (args.job,)
    return _run(settings, jobs, args.batch_id)


if __name__ == "__main__":
    sys.exit(main())
