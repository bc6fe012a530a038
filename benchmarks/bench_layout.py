"""Table layout for an orders-like table: daily partitions vs liquid clustering vs plain.

One command (from the repo root)::

    .venv/bin/python benchmarks/bench_layout.py --rows 100000 --days 365 --increments 5

An orders-like table (order_id, customer_id, product_id, quantity, amount, order_ts,
order_date; ``--rows`` rows spread uniformly over ``--days`` days, in ``--source-files``
input partitions as landing files would give) is written side by side, in one
SparkSession (``build_spark_session(load_config("local"))``), as:

partitioned    ``partitionBy("order_date")`` after ``repartition("order_date")``: the
               pipeline's layout today (conf ``orders``/``fact_sales``; one file per day
               per write); OPTIMIZE as ``maintain`` runs it: ZORDER BY customer_id,
               after the appends only the partitions written since the last OPTIMIZE
clustered      unpartitioned, Delta liquid clustering ``CLUSTER BY (order_date)``
               (``CREATE TABLE ... USING DELTA CLUSTER BY (order_date) LOCATION``, then
               appends); OPTIMIZE clusters what is not clustered yet
plain          Spark/Delta defaults: an unpartitioned ``save``, then appends; OPTIMIZE
               bin-packs with Delta's defaults

Each contender: write the history (timed), OPTIMIZE it (timed), append ``--increments``
daily increments of 1% of ``--rows`` each, all on new days after the history (timed,
total), OPTIMIZE again (timed: the incremental maintenance), then a 7-day range query in
the middle of the history and one over the last 7 days (the newest increments plus the
end of the history): ``count(*)`` and ``sum(amount)``, median of ``--repeat`` runs, and
the files the scan read (scan-node ``numFiles`` after partition pruning and Delta's
min/max skipping) out of the table's files. Printed as a table, with ratios against
``partitioned``.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
PARTITIONED, CLUSTERED, PLAIN = "partitioned", "clustered", "plain"
CONTENDERS = (PARTITIONED, CLUSTERED, PLAIN)
COLUMNS_SQL = (
    "order_id STRING, customer_id STRING, product_id STRING, quantity INT, "
    "amount DECIMAL(12,2), order_ts TIMESTAMP, order_date DATE"
)


@dataclass
class Result:
    layout: str
    write_s: float = 0.0
    files_history: int = 0
    optimize_history_s: float = 0.0
    files_optimized: int = 0
    append_s: float = 0.0
    files_after_writes: int = 0
    optimize_incr_s: float = 0.0
    files_final: int = 0
    #: per query: median seconds, files read, files in the table, bytes read
    queries: dict[str, tuple[float, int, int, int]] = field(default_factory=dict)
    error: str | None = None


def _orders(spark: Any, rows: int, first: dt.date, days: int, parts: int, seed: int) -> Any:
    """``rows`` orders uniformly over ``days`` days from ``first``, in ``parts`` partitions."""
    from pyspark.sql import functions as F

    day = (F.rand(seed) * days).cast("int")
    ts = F.timestamp_seconds(
        F.unix_timestamp(F.lit(first.isoformat()), "yyyy-MM-dd")
        + day * 86400
        + (F.rand(seed + 1) * 86400).cast("long")
    )
    return spark.range(0, rows, 1, parts).select(
        F.format_string("O%010d", F.col("id") + seed * 10**8).alias("order_id"),
        F.format_string("C%07d", (F.rand(seed + 2) * 5000).cast("int")).alias("customer_id"),
        F.format_string("P%06d", (F.rand(seed + 3) * 100).cast("int")).alias("product_id"),
        (F.rand(seed + 4) * 5 + 1).cast("int").alias("quantity"),
        (F.rand(seed + 5) * 500).cast("decimal(12,2)").alias("amount"),
        ts.alias("order_ts"),
        F.to_date(ts).alias("order_date"),
    )


def _files(spark: Any, path: str) -> int:
    from delta.tables import DeltaTable

    detail = DeltaTable.forPath(spark, path).detail().first()
    return int(detail["numFiles"]) if detail is not None else 0


def _write(layout: str, df: Any, path: str, *, first: bool) -> None:
    if layout == PARTITIONED:
        out = df.repartition("order_date").write.format("delta").partitionBy("order_date")
    else:  # clustered: the table exists (CREATE TABLE ... CLUSTER BY); plain: Spark's defaults
        out = df.write.format("delta")
    out.mode("errorifexists" if first and layout != CLUSTERED else "append").save(path)


def _table(layout: str, path: str) -> Any:
    from lakehouse.config import TableSettings

    if layout == PARTITIONED:  # conf/base.yaml's orders and fact_sales
        return TableSettings(
            path=path, layer="silver", partition_by=["order_date"], zorder_by=["customer_id"]
        )
    if layout == CLUSTERED:
        return TableSettings(path=path, layer="silver", cluster_by=["order_date"])
    return TableSettings(path=path, layer="silver")


def _timed(fn: Any, *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def run_layout(spark: Any, args: argparse.Namespace, layout: str, data: dict[str, Any]) -> Result:
    from pyspark.sql import functions as F

    from lakehouse.tuning.maintenance import changed_partitions, optimize
    from lakehouse.tuning.pruning import scan_stats

    path = str(args.work / layout)
    table = _table(layout, path)
    res = Result(layout)
    if layout == CLUSTERED:
        res.write_s += _timed(
            spark.sql,
            f"CREATE TABLE delta.`{path}` ({COLUMNS_SQL}) USING DELTA CLUSTER BY (order_date)",
        )
    res.write_s += _timed(_write, layout, data["history"], path, first=True)
    res.files_history = _files(spark, path)
    res.optimize_history_s = _timed(optimize, spark, path, table)
    res.files_optimized = _files(spark, path)
    for inc in data["increments"]:
        res.append_s += _timed(_write, layout, inc, path, first=False)
    res.files_after_writes = _files(spark, path)
    start = time.perf_counter()
    # maintain's incremental OPTIMIZE: partitioned tables only the partitions written since
    # the last OPTIMIZE; the others have no partitions (changed_partitions: [{}]).
    parts = changed_partitions(spark, path) if layout == PARTITIONED else None
    optimize(spark, path, table, partitions=parts)
    res.optimize_incr_s = time.perf_counter() - start
    res.files_final = _files(spark, path)
    for name, (lo, hi) in data["ranges"].items():
        df = (
            spark.read.format("delta")
            .load(path)
            .where(F.col("order_date").between(F.lit(lo), F.lit(hi)))
            .agg(F.count("*").alias("n"), F.sum("amount").alias("amount"))
        )
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            got = df.collect()[0]
            times.append(time.perf_counter() - start)
        expected = data["expected"][name]
        if (got["n"], got["amount"]) != expected:
            raise AssertionError(f"{layout} {name}: {tuple(got)} != {expected}")
        stats = scan_stats(df, path=path)
        res.queries[name] = (
            statistics.median(times),
            stats.files_read,
            stats.files_total,
            stats.bytes_read,
        )
    return res


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def print_results(results: list[Result]) -> None:
    base = next((r for r in results if r.layout == PARTITIONED and r.error is None), None)
    metrics: list[tuple[str, Any]] = [
        ("write history s", lambda r: r.write_s),
        ("files after history", lambda r: r.files_history),
        ("OPTIMIZE history s", lambda r: r.optimize_history_s),
        ("files after OPTIMIZE (hist.)", lambda r: r.files_optimized),
        ("append increments s", lambda r: r.append_s),
        ("files after appends", lambda r: r.files_after_writes),
        ("OPTIMIZE incremental s", lambda r: r.optimize_incr_s),
        ("files after OPTIMIZE (incr.)", lambda r: r.files_final),
    ]
    names = list(dict.fromkeys(n for r in results for n in r.queries))
    for name in names:
        metrics.append((f"{name} query s", lambda r, n=name: r.queries[n][0]))
        metrics.append((f"{name} files read", lambda r, n=name: r.queries[n][1]))
        metrics.append((f"{name} files total", lambda r, n=name: r.queries[n][2]))
        metrics.append((f"{name} KiB of files read", lambda r, n=name: r.queries[n][3] / 1024))
    ok = [r for r in results if r.error is None]
    header = f"{'metric':<36}" + "".join(f"{r.layout:>14}" for r in ok)
    header += "".join(f"{r.layout + '/part.':>18}" for r in ok if r is not base)
    print(header)
    print("-" * len(header))
    for label, get in metrics:
        values = [get(r) for r in ok]
        cells = "".join(f"{v:>14.2f}" if isinstance(v, float) else f"{v:>14,}" for v in values)
        if base is not None:
            cells += "".join(f"{_ratio(get(r), get(base)):>18}" for r in ok if r is not base)
        print(f"{label:<36}{cells}")
    for r in results:
        if r.error:
            print(f"{r.layout}: FAILED: {r.error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="orders of history")
    parser.add_argument("--days", type=int, default=365, help="days the history spans")
    parser.add_argument("--increments", type=int, default=5, help="daily 1%% appends")
    parser.add_argument("--source-files", type=int, default=8, help="input partitions")
    parser.add_argument("--repeat", type=int, default=3, help="query runs (median)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the tables here")
    args = parser.parse_args(argv)

    from lakehouse.config import load_config
    from lakehouse.spark.session import build_spark_session

    spark = build_spark_session(
        load_config("local", conf_dir=REPO / "conf"),
        app_name="bench-layout",
        extra_conf={"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"},
    )
    spark.sparkContext.setLogLevel("ERROR")
    keep = args.work_dir is not None
    args.work = (args.work_dir or Path(tempfile.mkdtemp(prefix="bench_layout_"))).resolve()
    if keep and args.work.exists() and any(args.work.iterdir()):
        raise SystemExit(f"bench_layout: {args.work} is not empty")
    first = dt.date(2025, 1, 1)
    end = first + dt.timedelta(days=args.days)  # the first increment's day
    mid = first + dt.timedelta(days=args.days // 2)
    t0 = time.perf_counter()
    results: list[Result] = []
    try:
        history = _orders(spark, args.rows, first, args.days, args.source_files, 1).cache()
        increments = [
            _orders(
                spark, max(1, args.rows // 100), end + dt.timedelta(days=k), 1, 2, 100 + k
            ).cache()
            for k in range(args.increments)
        ]
        last = end + dt.timedelta(days=args.increments - 1)
        ranges = {
            "7 days mid-history": (mid, mid + dt.timedelta(days=6)),
            "last 7 days": (last - dt.timedelta(days=6), last),
        }
        everything = history
        for inc in increments:
            everything = everything.unionByName(inc)
        from pyspark.sql import functions as F

        expected = {}
        for name, (lo, hi) in ranges.items():
            got = (
                everything.where(F.col("order_date").between(F.lit(lo), F.lit(hi)))
                .agg(F.count("*"), F.sum("amount"))
                .first()
            )
            expected[name] = (got[0], got[1])
        data = {"history": history, "increments": increments, "ranges": ranges}
        data["expected"] = expected
        for layout in CONTENDERS:
            print(f"{layout} ...", flush=True)
            try:
                results.append(run_layout(spark, args, layout, data))
            except Exception as exc:  # noqa: BLE001 - report it and go on with the others
                results.append(Result(layout, error=f"{type(exc).__name__}: {exc}"[:500]))
    finally:
        total = time.perf_counter() - t0
        spark.stop()
        if not keep:
            shutil.rmtree(args.work, ignore_errors=True)
    print(
        f"\nTable layout: {args.rows:,} orders over {args.days} days in {args.source_files} "
        f"input partitions, then {args.increments} daily appends of "
        f"{max(1, args.rows // 100):,} orders; queries median of {args.repeat}; "
        f"ranges {', '.join(f'{n} {lo}..{hi}' for n, (lo, hi) in ranges.items())}"
    )
    print(
        f"machine: {platform.machine()} {platform.system()}, python "
        f"{platform.python_version()}; total {total:.0f} s"
    )
    print_results(results)
    return 0 if all(r.error is None for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
