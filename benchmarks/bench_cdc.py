"""CDC benchmark: SCD1 and snapshot CDC against the hand-rolled ways, side by side in one run.

    python benchmarks/bench_cdc.py scd1 --rows 1000000
    python benchmarks/bench_cdc.py snapshot --rows 1000000
    python benchmarks/bench_cdc.py snapshot --rows 1000000 --deletion-vectors on

``scd1``: a table of ``--rows`` live rows and a batch updating ``--change-frac`` of the keys
(newer sequence) plus as many new keys. Contenders:

engine    ``lakehouse.cdc.apply_scd1`` (ordering by sequence, tombstones, conflicts,
          replay-safe)
upsert    a plain Delta MERGE: update every matched key, insert the rest (no ordering: an
          older event overwrites a newer one; no deletes)

``snapshot``: an SCD2 table of ``--rows`` current versions and a full snapshot in which
``--change-frac`` of the keys have a changed attribute and ``--delete-frac`` are missing.
Contenders:

engine     ``lakehouse.cdc.apply_snapshot`` into the SCD2 table
overwrite  overwrite a table with the snapshot (no history, no diff: the floor for
           "load the latest extract")
diff_merge the hand-written way: full outer join of the snapshot with the current
           versions, then one MERGE closing changed and missing keys and inserting new
           versions (Delta docs' staged-updates pattern)

``--deletion-vectors on`` writes the base table with ``delta.enableDeletionVectors`` set, so
every contender's MERGE marks replaced rows in deletion vectors instead of rewriting the
files that hold them (the overwrite replaces every file either way).

Each contender works on its own copy of the base table, round-robin: ``--warmup`` untimed
rounds, then ``--repeats`` timed ones. Printed: median wall time per contender, its ratio
to the engine, the row count afterwards and the deletion vectors its last commit added.
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

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.bench_scd2 import write_base
from lakehouse.cdc import SCD1Spec, SCD2Spec, apply_scd1, apply_snapshot
from lakehouse.config import load_config
from lakehouse.spark.session import build_spark_session

ATTRS = ["name", "email", "city", "tier"]
T0 = datetime(2024, 1, 1)
T1 = datetime(2024, 6, 1)


def _attrs(ids: DataFrame, city: F.Column) -> list[F.Column]:
    return [
        F.format_string("c%09d", F.col("id")).alias("id"),
        F.concat(F.lit("name-"), F.col("id").cast("string")).alias("name"),
        F.concat(F.lit("user"), F.col("id").cast("string"), F.lit("@example.com")).alias("email"),
        city.alias("city"),
        F.element_at(
            F.array(*[F.lit(t) for t in ("bronze", "silver", "gold")]),
            (F.col("id") % 3 + 1).cast("int"),
        ).alias("tier"),
    ]


def _city() -> F.Column:
    return F.concat(F.lit("city-"), (F.col("id") % 500).cast("string"))


# --- scd1 ------------------------------------------------------------------------------


def scd1_base(spark: SparkSession, rows: int, files: int) -> DataFrame:
    ids = spark.range(rows)
    return ids.select(*_attrs(ids, _city()), F.lit(T0).alias("updated_at")).repartitionByRange(
        files, "id"
    )


def scd1_batch(spark: SparkSession, rows: int, frac: float) -> DataFrame:
    n = max(1, int(rows * frac))
    changed = spark.range(rows).where(F.rand(seed=7) < frac)
    new = spark.range(rows, rows + n)
    both = changed.unionByName(new)
    return both.select(*_attrs(both, F.lit("moved-city")), F.lit(T1).alias("updated_at"))


SCD1_SPEC = SCD1Spec(keys=["id"], sequence_by="updated_at")


def scd1_engine(spark: SparkSession, path: str, batch: DataFrame) -> None:
    apply_scd1(spark, path, batch, SCD1_SPEC)


def scd1_upsert(spark: SparkSession, path: str, batch: DataFrame) -> None:
    from delta.tables import DeltaTable

    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(batch.alias("s"), "t.id = s.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


# --- snapshot --------------------------------------------------------------------------


def scd2_base(spark: SparkSession, rows: int, files: int) -> DataFrame:
    ids = spark.range(rows)
    return ids.select(
        *_attrs(ids, _city()),
        F.lit(T0).alias("valid_from"),
        F.lit(None).cast("timestamp").alias("valid_to"),
        F.lit(True).alias("is_current"),
    ).repartitionByRange(files, "id")


def snapshot_of(spark: SparkSession, rows: int, change: float, delete: float) -> DataFrame:
    r = F.rand(seed=11)
    ids = spark.range(rows).withColumn("_r", r).where(F.col("_r") >= delete)
    city = F.when(F.col("_r") < delete + change, F.lit("moved-city")).otherwise(_city())
    return ids.select(*_attrs(ids, city))


SNAP_SPEC = SCD2Spec(keys=["id"], sequence_by="updated_at")


def snap_engine(spark: SparkSession, path: str, snapshot: DataFrame) -> None:
    apply_snapshot(spark, path, snapshot, SNAP_SPEC, snapshot_at=T1)


def snap_overwrite(spark: SparkSession, path: str, snapshot: DataFrame) -> None:
    snapshot.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)


def snap_diff_merge(spark: SparkSession, path: str, snapshot: DataFrame) -> None:
    from delta.tables import DeltaTable

    target = DeltaTable.forPath(spark, path)
    current = (
        target.toDF().where("is_current").select("id", *[F.col(a).alias(f"c_{a}") for a in ATTRS])
    )
    joined = snapshot.withColumn("_in", F.lit(True)).join(current, "id", "full_outer")
    differs = " OR ".join(f"NOT ({a} <=> c_{a})" for a in ATTRS)
    diff = joined.where(f"_in IS NULL OR c_name IS NULL OR {differs}").select(
        "id", *ATTRS, F.col("_in").isNull().alias("_gone")
    )
    staged = (
        diff.selectExpr("NULL AS mergeKey", "*")
        .where("NOT _gone")
        .unionByName(diff.selectExpr("id AS mergeKey", "*"))
    )
    (
        target.alias("t")
        .merge(staged.alias("s"), "t.id = s.mergeKey AND t.is_current")
        .whenMatchedUpdate(set={"is_current": "false", "valid_to": F.lit(T1)})
        .whenNotMatchedInsert(
            condition="NOT s._gone",
            values={
                "id": "s.id",
                **{a: f"s.{a}" for a in ATTRS},
                "valid_from": F.lit(T1),
                "valid_to": "null",
                "is_current": "true",
            },
        )
        .execute()
    )


MODES: dict[str, dict[str, Callable[[SparkSession, str, DataFrame], None]]] = {
    "scd1": {"engine": scd1_engine, "upsert": scd1_upsert},
    "snapshot": {"engine": snap_engine, "overwrite": snap_overwrite, "diff_merge": snap_diff_merge},
}


def dvs_added(spark: SparkSession, path: str) -> int:
    """Deletion vectors the table's last commit added (0 for a commit that adds none)."""
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").first()
    metrics = (row[0] if row else None) or {}
    return int(metrics.get("numTargetDeletionVectorsAdded", 0))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("mode", choices=sorted(MODES))
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--change-frac", type=float, default=0.01)
    p.add_argument("--delete-frac", type=float, default=0.001, help="snapshot: keys missing")
    p.add_argument("--files", type=int, default=16)
    p.add_argument("--deletion-vectors", choices=["on", "off"], default="off")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--workdir", default=None)
    args = p.parse_args(argv)

    settings = load_config("local", conf_dir=Path(__file__).resolve().parents[1] / "conf")
    spark = build_spark_session(
        settings,
        app_name=f"bench-cdc-{args.mode}",
        extra_conf={"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"},
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-cdc-"))
    contenders = MODES[args.mode]
    try:
        base = str(work / "base")
        dv = args.deletion_vectors == "on"
        if args.mode == "scd1":
            write_base(spark, scd1_base(spark, args.rows, args.files), base, dv)
            batch = scd1_batch(spark, args.rows, args.change_frac).localCheckpoint()
        else:
            write_base(spark, scd2_base(spark, args.rows, args.files), base, dv)
            batch = snapshot_of(
                spark, args.rows, args.change_frac, args.delete_frac
            ).localCheckpoint()
        n_batch = batch.count()
        times: dict[str, list[float]] = {n: [] for n in contenders}
        rows_after: dict[str, int] = {}
        dvs: dict[str, int] = {}
        for rep in range(-args.warmup, args.repeats):
            for name, run in contenders.items():
                dst = str(work / f"run_{name}_{rep}")
                shutil.copytree(base, dst)
                t = time.perf_counter()
                run(spark, dst, batch)
                elapsed = time.perf_counter() - t
                if rep >= 0:
                    times[name].append(elapsed)
                    rows_after[name] = spark.read.format("delta").load(dst).count()
                    dvs[name] = dvs_added(spark, dst)
                shutil.rmtree(dst)
        what = "batch rows" if args.mode == "scd1" else "snapshot rows"
        print(
            f"\nCDC {args.mode}: rows={args.rows:,} {what}={n_batch:,} "
            f"change={args.change_frac} delete={args.delete_frac if args.mode == 'snapshot' else 0} "
            f"files={args.files} deletion vectors {args.deletion_vectors} "
            f"repeats={args.repeats} after {args.warmup} warm-up round(s)"
        )
        print(
            f"machine: {platform.machine()} {platform.system()} "
            f"cpus={spark.sparkContext.defaultParallelism} python {platform.python_version()} "
            f"spark {spark.version}; {datetime.now():%Y-%m-%d %H:%M}"
        )
        base_t = statistics.median(times["engine"])
        print(
            f"{'contender':<11}{'median s':>10}{'x engine':>10}{'rows after':>12}{'DVs':>6}"
            "  runs (s)"
        )
        for name in contenders:
            med = statistics.median(times[name])
            runs = " ".join(f"{x:.1f}" for x in times[name])
            print(
                f"{name:<11}{med:>10.2f}{med / base_t:>10.2f}{rows_after[name]:>12,}"
                f"{dvs[name]:>6}  {runs}"
            )
    finally:
        spark.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
