"""Write the deterministic sample landing files the demo pipeline ingests.

    python -m harness generate [--env local] [--orders N] [--seed S] [--if-missing | --fresh]
    python -m harness increment [--env local] [--day YYYY-MM-DD | --index K] [--orders N]
                                [--customer-updates M] [--late-events L] [--seed S]

Sizes, dates and the seed come from the ``generator:`` section of the configuration;
``--orders`` and ``--seed`` override it. ``--if-missing`` writes nothing when landing
files are already there (what ``scripts/pipeline.sh`` uses, so a second run adds no data).
``--fresh`` first deletes the landing folder, every declared table, the jobs' streaming
checkpoints and the run reports
(local paths under the data root only), so the next run starts from nothing.

``increment`` adds one day of new landing files next to the history and never touches an
existing file (see :func:`harness.generator.generate_increment`): ``--orders`` orders of
that day (default 1% of the configured ``generator.orders``), ``--customer-updates``
customer updates (default 0.2% of it) and ``--late-events`` updates timestamped inside the
history (default 0). The day is ``--day``, or day ``--index K`` after the history
(``generator.start_date + generator.days + K``), or by default the first day after the
history that has no increment yet, so successive calls add consecutive days.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.generator import generate_increment, generate_landing
from lakehouse.config import ConfigError, Settings, load_config
from lakehouse.pipeline.incremental import checkpoints_root


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write deterministic sample landing files")
    g.add_argument("--env", default="local", help="environment overlay (conf/env/<env>.yaml)")
    g.add_argument("--conf-dir", default=None, help="configuration directory (default: ./conf)")
    g.add_argument("--orders", type=int, default=None, help="number of orders (default: config)")
    g.add_argument("--seed", type=int, default=None, help="random seed (default: config)")
    once = g.add_mutually_exclusive_group()
    once.add_argument(
        "--if-missing", action="store_true", help="do nothing if landing files already exist"
    )
    once.add_argument(
        "--fresh", action="store_true", help="delete landing files, tables and reports first"
    )
    _increment_parser(sub)
    return p


def _increment_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    i = sub.add_parser("increment", help="add one day of new landing files after the history")
    i.add_argument("--env", default="local", help="environment overlay (conf/env/<env>.yaml)")
    i.add_argument("--conf-dir", default=None, help="configuration directory (default: ./conf)")
    when = i.add_mutually_exclusive_group()
    when.add_argument("--day", default=None, help="the increment's day, YYYY-MM-DD")
    when.add_argument(
        "--index", type=int, default=None, help="day K after the history (0 = the first)"
    )
    i.add_argument(
        "--orders", type=int, default=None, help="orders (default: 1%% of generator.orders)"
    )
    i.add_argument(
        "--customer-updates",
        type=int,
        default=None,
        help="customer updates on the day (default: 0.2%% of generator.orders)",
    )
    i.add_argument(
        "--late-events",
        type=int,
        default=0,
        help="customer updates timestamped inside the history (default: 0)",
    )
    i.add_argument("--seed", type=int, default=None, help="random seed (default: config)")


def _wipe(settings: Settings) -> None:
    """Delete the landing folder, every declared table, the checkpoints and the reports, under
    the data root."""
    root = Path(settings.paths.data_root).resolve()
    paths = [settings.landing_path, settings.reports_path, checkpoints_root(settings)]
    paths += [settings.table_path(name) for name in settings.tables]
    for raw in paths:
        path = Path(raw).resolve()
        if root not in path.parents:
            raise SystemExit(f"harness: refusing to delete {path}: not under the data root {root}")
        if path.exists():
            shutil.rmtree(path)
            print(f"deleted {path}")


def _increment(settings: Settings, args: argparse.Namespace) -> int:
    gen = settings.generator
    try:
        stats = generate_increment(
            settings.landing_path,
            day=args.day,
            index=args.index,
            orders=max(1, gen.orders // 100) if args.orders is None else args.orders,
            customer_updates=(
                max(1, gen.orders // 500)
                if args.customer_updates is None
                else args.customer_updates
            ),
            late_customer_events=args.late_events,
            seed=gen.seed if args.seed is None else args.seed,
            customers=gen.customers,
            products=gen.products,
            days=gen.days,
            start_date=gen.start_date,
            malformed_fraction=gen.malformed_fraction,
        )
    except (OSError, ValueError) as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    print(f"increment written to {settings.landing_path}: {json.dumps(stats)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_config(args.env, conf_dir=args.conf_dir)
    except ConfigError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    landing = settings.landing_path
    if "://" in landing:
        print(
            f"harness: {args.command} writes local files only; landing is {landing}",
            file=sys.stderr,
        )
        return 2
    if args.command == "increment":
        return _increment(settings, args)
    if args.fresh:
        _wipe(settings)
    if args.if_missing and any(Path(landing).glob("*/*")):
        print(f"landing files already in {landing}; nothing generated")
        return 0
    gen = settings.generator
    stats = generate_landing(
        landing,
        orders=args.orders or gen.orders,
        customers=gen.customers,
        products=gen.products,
        days=gen.days,
        start_date=gen.start_date,
        seed=gen.seed if args.seed is None else args.seed,
        malformed_fraction=gen.malformed_fraction,
    )
    print(f"landing files written to {landing}: {json.dumps(stats)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
