"""Partition pruning: what a 7-day query really reads from a 365-day partitioned fact.

One command (from the repo root)::

    nice .venv/bin/python benchmarks/bench_pruning.py --days 365 --rows-per-day 2000

Contenders, each measured from the executed plan's scan metrics (files and partitions
read, against the Delta log's totals) and timed (median of ``--repeat`` runs):

1. ``d BETWEEN start AND end`` (the pruning filter; ideal = 7 partitions),
2. ``date_format(d, 'yyyy-MM-dd') BETWEEN ...`` (a function on the partition column),
3. a Python UDF over ``d`` (does not prune),
4. a filter on the timestamp column ``ts`` instead of the partition column (does not prune),
5. a join with a date dimension filtered to one week (dynamic partition pruning, Spark's
   default), and the same join with DPP switched off.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rows-per-day", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType

    from lakehouse.config import load_config
    from lakehouse.spark.session import build_spark_session
    from lakehouse.tuning.pruning import PartitionRange, dynamic_pruning_filters, scan_stats

    settings = load_config("local", conf_dir=REPO / "conf")
    spark = build_spark_session(
        settings,
        app_name="bench-pruning",
        extra_conf={
            "spark.driver.memory": "4g",
            "spark.sql.shuffle.partitions": "8",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.databricks.delta.snapshotPartitions": "2",
        },
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_pruning_"))
    shutil.rmtree(work, ignore_errors=True)
    fact, dim = str(work / "fact"), str(work / "dim_date")
    start = dt.date(2025, 1, 1)
    first_day = start + dt.timedelta(days=70)
    last_day = first_day + dt.timedelta(days=6)
    week = PartitionRange.days("d", first_day, 7)
    t0 = time.perf_counter()
    try:
        n = args.days * args.rows_per_day
        (
            spark.range(0, n, 1, 4)
            .withColumn("d", F.date_add(F.lit(start), (F.col("id") % args.days).cast("int")))
            .withColumn("ts", F.col("d").cast("timestamp") + F.expr("INTERVAL 1 HOUR"))
            .withColumn("amount", F.rand(3))
            .repartition("d")
            .write.format("delta")
            .partitionBy("d")
            .save(fact)
        )
        (
            spark.range(0, args.days)
            .select(
                F.date_add(F.lit(start), F.col("id").cast("int")).alias("d"),
                (F.col("id") / 7).cast("int").alias("week"),
            )
            .write.format("delta")
            .save(dim)
        )
        lo, hi = first_day, last_day  # plain dates: the UDF must not pickle lakehouse objects
        in_week = F.udf(lambda d: lo <= d <= hi, BooleanType())
        facts = spark.read.format("delta").load(fact)
        dims = spark.read.format("delta").load(dim)
        week_no = 10  # days 70..76, the same 7 days as `week`
        contenders = {
            "d BETWEEN (partition column)": lambda: facts.where(week.filter()),
            "date_format(d) BETWEEN": lambda: facts.where(
                F.date_format("d", "yyyy-MM-dd").between(str(week.start), str(week.end))
            ),
            "Python UDF over d": lambda: facts.where(in_week("d")),
            "ts BETWEEN (not partition col)": lambda: facts.where(
                F.col("ts").between(
                    F.lit(dt.datetime.combine(first_day, dt.time())),
                    F.lit(dt.datetime.combine(last_day, dt.time(23, 59, 59))),
                )
            ),
            "join dim week=10 (DPP on)": lambda: facts.join(
                dims.where(F.col("week") == week_no), "d"
            ),
            "join dim week=10 (DPP off)": lambda: facts.join(
                dims.where(F.col("week") == week_no), "d"
            ),
        }
        dpp_key = "spark.sql.optimizer.dynamicPartitionPruning.enabled"
        rows = []
        for name, build in contenders.items():
            spark.conf.set(dpp_key, "false" if "DPP off" in name else "true")
            times: list[float] = []
            stats = None
            for _ in range(args.repeat):
                df = build()
                t = time.perf_counter()
                stats = scan_stats(df, path=fact)
                times.append(time.perf_counter() - t)
            dpp = bool(dynamic_pruning_filters(build())) if "join" in name else False
            assert stats is not None
            rows.append((name, stats, statistics.median(times), dpp))
        spark.conf.unset(dpp_key)
    finally:
        total = time.perf_counter() - t0
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)

    ideal = 7
    base_time = rows[0][2]
    print(
        f"\nPartition pruning: {args.days} daily partitions, {args.rows_per_day} rows/day, "
        f"7-day query; median of {args.repeat}"
    )
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}; total {total:.0f} s")
    header = (
        f"{'query':<32}{'partitions':>12}{'files':>10}{'MiB read':>10}"
        f"{'x ideal':>9}{'secs':>8}{'x time':>8}{'DPP':>5}"
    )
    print(header)
    print("-" * len(header))
    for name, s, secs, dpp in rows:
        print(
            f"{name:<32}{f'{s.partitions_read}/{s.partitions_total}':>12}"
            f"{f'{s.files_read}/{s.files_total}':>10}{s.bytes_read / 2**20:>10.2f}"
            f"{s.partitions_read / ideal:>9.2f}{secs:>8.2f}{secs / base_time:>8.2f}"
            f"{('yes' if dpp else '-'):>5}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
