"""SCD2 merge benchmark: this engine vs mack, Delta's documented pattern and a full rewrite.

One command, contenders side by side in the same run::

    python benchmarks/bench_scd2.py --rows 1000000 --layout scattered --deletion-vectors off

A dimension of ``--rows`` current versions (range-partitioned by key into ``--files``
files) is written once; each contender then applies the same batch changing
``--change-frac`` of the keys (``scattered``: random keys; ``clustered``: one contiguous
key range) to its own copy of it, round-robin: ``--warmup`` untimed rounds of every
contender, then ``--repeats`` timed ones. Printed per contender: median wall time of the
timed runs, the ratio to this engine, and from the Delta commit metrics the files and
bytes removed (rewritten) and added.

Contenders
----------
engine    ``lakehouse.scd2.apply_scd2`` (NULL-safe, late events, deletes, replay-safe)
mack      ``mack.type_2_scd_upsert`` (compares with ``<>``; one event per key)
staged    Delta docs' "SCD Type 2 using merge" staged-updates pattern (same limits as mack)
rewrite   full recompute of every key's chain with window functions + overwrite
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse.config import load_config
from lakehouse.scd2 import SCD2Spec, apply_scd2
from lakehouse.spark.session import build_spark_session

ATTRS = ["name", "email", "city", "tier"]
T0 = datetime(2024, 1, 1)
T1 = datetime(2024, 6, 1)


def base_table(spark: SparkSession, rows: int, files: int, meta: tuple[str, str, str]) -> DataFrame:
    vf, vt, ic = meta
    df = spark.range(rows).select(
        F.format_string("c%09d", F.col("id")).alias("id"),
        F.concat(F.lit("name-"), F.col("id").cast("string")).alias("name"),
        F.concat(F.lit("user"), F.col("id").cast("string"), F.lit("@example.com")).alias("email"),
        F.concat(F.lit("city-"), (F.col("id") % 500).cast("string")).alias("city"),
        F.element_at(
            F.array(*[F.lit(t) for t in ("bronze", "silver", "gold")]),
            (F.col("id") % 3 + 1).cast("int"),
        ).alias("tier"),
        F.lit(T0).alias(vf),
        F.lit(None).cast("timestamp").alias(vt),
        F.lit(True).alias(ic),
    )
    return df.repartitionByRange(files, "id")


def write_base(spark: SparkSession, df: DataFrame, path: str, deletion_vectors: bool) -> None:
    """Write the base table as Delta with deletion vectors on or off."""
    dv = str(deletion_vectors).lower()
    df.write.format("delta").option("delta.enableDeletionVectors", dv).save(path)
    spark.sql(
        f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = '{dv}')"
    )


def change_batch(spark: SparkSession, rows: int, frac: float, layout: str) -> DataFrame:
    n = max(1, int(rows * frac))
    ids = spark.range(rows)
    if layout == "clustered":
        start = rows // 3
        ids = ids.where((F.col("id") >= start) & (F.col("id") < start + n))
    else:
        ids = ids.where(F.rand(seed=7) < frac)
    return ids.select(
        F.format_string("c%09d", F.col("id")).alias("id"),
        F.concat(F.lit("name-"), F.col("id").cast("string")).alias("name"),
        F.concat(F.lit("user"), F.col("id").cast("string"), F.lit("@example.com")).alias("email"),
        F.lit("moved-city").alias("city"),
        F.element_at(
            F.array(*[F.lit(t) for t in ("bronze", "silver", "gold")]),
            (F.col("id") % 3 + 1).cast("int"),
        ).alias("tier"),
        F.lit(T1).alias("updated_at"),
    )


# --- contenders -------------------------------------------------------------------------


def run_engine(spark: SparkSession, path: str, changes: DataFrame) -> None:
    apply_scd2(spark, path, changes, SCD2Spec(keys=["id"], sequence_by="updated_at"))


def run_mack(spark: SparkSession, path: str, changes: DataFrame) -> None:
    import mack
    from delta.tables import DeltaTable

    updates = changes.withColumnRenamed("updated_at", "effective_time")
    mack.type_2_scd_upsert(DeltaTable.forPath(spark, path), updates, "id", ATTRS)


def run_staged(spark: SparkSession, path: str, changes: DataFrame) -> None:
    """Delta docs, "Slowly changing data (SCD) Type 2 operation into Delta tables"."""
    from delta.tables import DeltaTable

    target = DeltaTable.forPath(spark, path)
    differs = " OR ".join(f"updates.{a} <> customers.{a}" for a in ATTRS)
    to_insert = (
        changes.alias("updates")
        .join(target.toDF().alias("customers"), "id")
        .where(f"customers.is_current = true AND ({differs})")
    )
    staged = to_insert.selectExpr("NULL as mergeKey", "updates.*").union(
        changes.selectExpr("id as mergeKey", "*")
    )
    (
        target.alias("customers")
        .merge(staged.alias("staged_updates"), "customers.id = mergeKey")
        .whenMatchedUpdate(
            condition="customers.is_current = true AND ("
            + " OR ".join(f"customers.{a} <> staged_updates.{a}" for a in ATTRS)
            + ")",
            set={"is_current": "false", "valid_to": "staged_updates.updated_at"},
        )
        .whenNotMatchedInsert(
            values={
                "id": "staged_updates.id",
                **{a: f"staged_updates.{a}" for a in ATTRS},
                "valid_from": "staged_updates.updated_at",
                "valid_to": "null",
                "is_current": "true",
            }
        )
        .execute()
    )


def run_rewrite(spark: SparkSession, path: str, changes: DataFrame) -> None:
    """Recompute every key's chain from all versions + the batch, overwrite the table."""
    current = spark.read.format("delta").load(path)
    events = current.select("id", *ATTRS, F.col("valid_from").alias("seq")).unionByName(
        changes.select("id", *ATTRS, F.col("updated_at").alias("seq"))
    )
    w = Window.partitionBy("id").orderBy("seq")
    same = [F.col(a).eqNullSafe(F.lag(a).over(w)) for a in ATTRS]
    keep = F.lag("seq").over(w).isNull() | ~(same[0] & same[1] & same[2] & same[3])
    chain = events.withColumn("__keep", keep).where("__keep").drop("__keep")
    out = chain.select(
        "id",
        *ATTRS,
        F.col("seq").alias("valid_from"),
        F.lead("seq").over(w).alias("valid_to"),
    ).withColumn("is_current", F.col("valid_to").isNull())
    out.localCheckpoint().write.format("delta").mode("overwrite").save(path)


CONTENDERS: dict[str, Callable[[SparkSession, str, DataFrame], None]] = {
    "engine": run_engine,
    "mack": run_mack,
    "staged": run_staged,
    "rewrite": run_rewrite,
}


def commit_metrics(spark: SparkSession, path: str) -> dict[str, Any]:
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).history(1).first()
    if row is None:
        raise RuntimeError(f"{path}: the Delta table has no history")
    m = {k: int(v) for k, v in (row["operationMetrics"] or {}).items() if v.isdigit()}
    if row["operation"] == "MERGE":
        return {
            "files_removed": m.get("numTargetFilesRemoved", 0),
            "files_added": m.get("numTargetFilesAdded", 0),
            "bytes_removed": m.get("numTargetBytesRemoved", 0),
            "bytes_added": m.get("numTargetBytesAdded", 0),
            "dvs_added": m.get("numTargetDeletionVectorsAdded", 0),
        }
    return {
        "files_removed": m.get("numRemovedFiles", -1),
        "files_added": m.get("numFiles", 0),
        "bytes_removed": m.get("numRemovedBytes", -1),
        "bytes_added": m.get("numOutputBytes", 0),
        "dvs_added": 0,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, default=1_000_000, help="dimension size (default 1M)")
    p.add_argument("--change-frac", type=float, default=0.01, help="fraction of keys changed")
    p.add_argument("--layout", choices=["scattered", "clustered"], default="scattered")
    p.add_argument("--deletion-vectors", choices=["on", "off"], default="off")
    p.add_argument("--files", type=int, default=16, help="files in the base table")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed rounds of every contender first (JIT and caches warm up)",
    )
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--workdir", default=None)
    p.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark setting for the session every contender runs in (repeatable)",
    )
    args = p.parse_args(argv)
    extra = dict(kv.split("=", 1) for kv in args.conf)

    settings = load_config("local", conf_dir=Path(__file__).resolve().parents[1] / "conf")
    spark = build_spark_session(
        settings,
        app_name="bench-scd2",
        extra_conf={"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", **extra},
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scd2-"))
    names = [c for c in args.contenders.split(",") if c]
    try:
        bases = {}
        for meta in [
            ("valid_from", "valid_to", "is_current"),
            ("effective_time", "end_time", "is_current"),
        ]:
            path = str(work / f"base_{meta[0]}")
            df = base_table(spark, args.rows, args.files, meta)
            if (
                meta[0] == "effective_time"
            ):  # mack wants pk, attrs, is_current, effective_time, end_time
                df = df.select("id", *ATTRS, "is_current", "effective_time", "end_time")
            write_base(spark, df, path, args.deletion_vectors == "on")
            bases[meta[0]] = path
        changes = change_batch(spark, args.rows, args.change_frac, args.layout).localCheckpoint()
        n_changes = changes.count()
        times: dict[str, list[float]] = {n: [] for n in names}
        metrics: dict[str, dict[str, Any]] = {}
        rows_after: dict[str, int] = {}
        for rep in range(-args.warmup, args.repeats):
            for name in names:
                src = bases["effective_time" if name == "mack" else "valid_from"]
                dst = str(work / f"run_{name}_{rep}")
                shutil.copytree(src, dst)
                t = time.perf_counter()
                CONTENDERS[name](spark, dst, changes)
                if rep < 0:  # warm-up round
                    shutil.rmtree(dst)
                    continue
                times[name].append(time.perf_counter() - t)
                metrics[name] = commit_metrics(spark, dst)
                rows_after[name] = spark.read.format("delta").load(dst).count()
                shutil.rmtree(dst)
        print(
            f"\nSCD2 merge: rows={args.rows:,} changed={n_changes:,} ({args.layout}), "
            f"deletion vectors {args.deletion_vectors}, files={args.files}, repeats={args.repeats}"
            f" after {args.warmup} warm-up round(s)" + (f"; session conf {extra}" if extra else "")
        )
        print(
            f"machine: {platform.machine()} {platform.system()} "
            f"cpus={spark.sparkContext.defaultParallelism} python {platform.python_version()} "
            f"spark {spark.version}; {datetime.now():%Y-%m-%d %H:%M}"
        )
        base_t = statistics.median(times["engine"]) if "engine" in times else None
        header = (
            f"{'contender':<10}{'median s':>10}{'x engine':>10}{'files rm':>10}"
            f"{'files add':>10}{'MB rm':>9}{'MB add':>9}{'DVs':>6}{'rows after':>12}  runs (s)"
        )
        print(header)
        print("-" * len(header))
        for name in names:
            med = statistics.median(times[name])
            ratio = f"{med / base_t:.2f}" if base_t else "-"
            m = metrics[name]
            print(
                f"{name:<10}{med:>10.2f}{ratio:>10}{m['files_removed']:>10}{m['files_added']:>10}"
                f"{m['bytes_removed'] / 1e6:>9.1f}{m['bytes_added'] / 1e6:>9.1f}{m['dvs_added']:>6}"
                f"{rows_after[name]:>12,}  {' '.join(f'{x:.1f}' for x in times[name])}"
            )
    finally:
        spark.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
