"""AQE profiles on a skewed join feeding a 200-partition aggregation: wall time per profile.

One command (from the repo root)::

    nice .venv/bin/python benchmarks/bench_aqe.py --fact-rows 3000000 --dim-rows 1000000

The query joins a fact (``--hot`` of its rows on one key) with a dimension too big to
broadcast (sort-merge join, the skewed case), then aggregates into
``spark.sql.shuffle.partitions=200`` (Spark's default) mostly tiny partitions, and writes
to the ``noop`` sink. Contenders, interleaved round-robin, median of ``--repeat``:

* AQE off (``spark.sql.adaptive.enabled=false``),
* Spark's defaults (AQE on, profile ``default``),
* every other profile in ``conf/base.yaml`` (``skewed-joins``, ``many-small-files``).

For each it also reports what AQE did in the executed plan (skew-split / coalesced reads).
Target (issue 4): the right profile >= 1.5x faster than AQE off; the fair comparison is
against Spark's defaults, which already enable AQE.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--fact-rows", type=int, default=3_000_000)
    parser.add_argument("--dim-rows", type=int, default=1_000_000)
    parser.add_argument("--hot", type=float, default=0.5, help="fraction of fact rows on key 0")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from lakehouse.config import AqeProfile, load_config
    from lakehouse.spark.session import build_spark_session
    from lakehouse.tuning.aqe import apply_profile, aqe_conf, shuffle_reads
    from lakehouse.tuning.pruning import executed_plan

    settings = load_config("local", conf_dir=REPO / "conf")
    spark = build_spark_session(
        settings,
        app_name="bench-aqe",
        extra_conf={
            "spark.driver.memory": "6g",
            "spark.sql.shuffle.partitions": "200",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.databricks.delta.snapshotPartitions": "2",
        },
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_aqe_"))
    shutil.rmtree(work, ignore_errors=True)
    fact_path, dim_path = str(work / "fact"), str(work / "dim")
    t0 = time.perf_counter()
    try:
        hot_rows = int(args.fact_rows * args.hot)
        (
            spark.range(0, args.fact_rows, 1, 8)
            .select(
                F.when(F.col("id") < hot_rows, F.lit(0))
                .otherwise((F.col("id") * 7919) % args.dim_rows)
                .alias("k"),
                F.rand(5).alias("amount"),
            )
            .write.format("delta")
            .save(fact_path)
        )
        (
            spark.range(0, args.dim_rows, 1, 4)
            .select(
                F.col("id").alias("k"),
                F.sha2(F.col("id").cast("string"), 256).alias("payload"),
                (F.col("id") % 5000).alias("grp"),
            )
            .write.format("delta")
            .save(dim_path)
        )

        def query():  # type: ignore[no-untyped-def]
            fact = spark.read.format("delta").load(fact_path)
            dim = spark.read.format("delta").load(dim_path)
            return (
                fact.join(dim, "k")
                .groupBy("grp")
                .agg(F.sum("amount").alias("amount"), F.count("*").alias("n"))
            )

        contenders: dict[str, AqeProfile | None] = {"AQE off": None}
        contenders.update({f"profile {n}": p for n, p in settings.aqe_profiles.items()})
        times: dict[str, list[float]] = {name: [] for name in contenders}
        plans: dict[str, str] = {}
        for _ in range(args.repeat):
            for name, profile in contenders.items():
                apply_profile(spark, profile or AqeProfile())
                if profile is None:
                    spark.conf.set("spark.sql.adaptive.enabled", "false")
                t = time.perf_counter()
                plan = executed_plan(query())
                times[name].append(time.perf_counter() - t)
                reads = shuffle_reads(plan)
                plans[name] = (
                    ", ".join(f"{r['description'] or 'plain'}:{r['partitions']}" for r in reads)
                    or "no AQE shuffle reads"
                )
        apply_profile(spark, AqeProfile())
    finally:
        total = time.perf_counter() - t0
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    off, defaults = med["AQE off"], med["profile default"]
    print(
        f"\nAQE: fact {args.fact_rows:,} rows ({args.hot:.0%} on one key) JOIN dim "
        f"{args.dim_rows:,} rows, then GROUP BY into 200 shuffle partitions; "
        f"median of {args.repeat}, round-robin"
    )
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}; total {total:.0f} s")
    header = f"{'contender':<28}{'median s':>10}{'vs off':>8}{'vs defaults':>13}  AQE shuffle reads"
    print(header)
    print("-" * len(header))
    for name in contenders:
        print(
            f"{name:<28}{med[name]:>10.2f}{off / med[name]:>7.2f}x{defaults / med[name]:>12.2f}x"
            f"  {plans[name]}"
        )
    for name, profile in contenders.items():
        if profile is not None:
            print(f"  {name}: {aqe_conf(profile) or '(Spark defaults)'}")
    best = min((n for n in contenders if n != "AQE off"), key=lambda n: med[n])
    print(
        f"fastest profile: {best}, {off / med[best]:.2f}x vs AQE off "
        f"(target >= 1.5x: {'met' if off / med[best] >= 1.5 else 'MISSED'}), "
        f"{defaults / med[best]:.2f}x vs Spark defaults"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
