"""Write the deterministic sample landing files the demo pipeline ingests.

    python -m harness generate [--env local] [--orders N] [--seed S] [--if-missing | --fresh]

Sizes, dates and the seed come from the ``generator:`` section of the configuration;
``--orders`` and ``--seed`` override it. ``--if-missing`` writes nothing when landing
files are already there (what ``scripts/pipeline.sh`` uses, so a second run adds no data).
``--fresh`` first deletes the landing folder, every declared table and the run reports
(local paths under the data root only), so the next run starts from nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.generator import generate_landing
from lakehouse.config import ConfigError, Settings, load_config


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
    return p


def _wipe(settings: Settings) -> None:
    """Delete the landing folder, every declared table and the reports, under the data root."""
    root = Path(settings.paths.data_root).resolve()
    paths = [settings.landing_path, settings.reports_path]
    paths += [settings.table_path(name) for name in settings.tables]
    for raw in paths:
        path = Path(raw).resolve()
        if root not in path.parents:
            raise SystemExit(f"harness: refusing to delete {path}: not under the data root {root}")
        if path.exists():
            shutil.rmtree(path)
            print(f"deleted {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_config(args.env, conf_dir=args.conf_dir)
    except ConfigError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    landing = settings.landing_path
    if "://" in landing:
        print(f"harness: generate writes local files only; landing is {landing}", file=sys.stderr)
        return 2
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
