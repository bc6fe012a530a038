"""Layout properties, incremental OPTIMIZE / Z-order, VACUUM guard, data-skipping explainer."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import Column, Row
from pyspark.sql import functions as F

from lakehouse.config import TableSettings, load_config
from lakehouse.pipeline import execute_job
from lakehouse.tuning.maintenance import (
    VacuumRetentionError,
    apply_layout,
    changed_partitions,
    current_retention_hours,
    explain_skipping,
    optimize,
    optimize_conf,
    partition_predicate,
    safety_retention_hours,
    table_properties,
    vacuum,
)

D1, D2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)
REPO = Path(__file__).resolve().parents[3]


def _write_days(spark, path, days, *, mode="append", files=2):
    rows = [(i, d, i % 7) for d in days for i in range(6)]
    (
        spark.createDataFrame(rows, "id long, d date, c long")
        .repartition(files)
        .write.format("delta")
        .mode(mode)
        .partitionBy("d")
        .save(path)
    )


def test_table_properties_from_layout():
    t = TableSettings(
        path="p",
        layer="gold",
        target_file_size="64m",
        data_skipping_stats_columns=["c", "d"],
        deletion_vectors=False,
    )
    assert table_properties(t) == {
        "delta.dataSkippingStatsColumns": "c,d",
        "delta.enableDeletionVectors": "false",
    }
    assert table_properties(TableSettings(path="p", layer="gold")) == {}
    assert optimize_conf(t) == {"spark.databricks.delta.optimize.maxFileSize": "67108864"}
    z = TableSettings(path="p", layer="gold", zorder_by=["x", "y"], zorder_ranges=8)
    assert optimize_conf(z) == {
        "spark.databricks.io.skipping.mdc.rangeId.max": "8",
        "spark.databricks.io.skipping.mdc.addNoise": "false",
    }
    with pytest.raises(ValueError, match="zorder_ranges 8 needs zorder_by"):
        TableSettings(path="p", layer="gold", zorder_ranges=8)
    with pytest.raises(ValueError, match="greater than or equal to 2"):
        TableSettings(path="p", layer="gold", zorder_by=["x"], zorder_ranges=1)


def test_layout_rejects_cluster_with_partitions():
    with pytest.raises(
        ValueError, match=r"cluster_by \['x'\] cannot be combined with partition_by \['d'\]"
    ):
        TableSettings(path="p", layer="gold", partition_by=["d"], cluster_by=["x"])


def test_apply_layout_sets_properties_and_clustering(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.range(10).withColumn("x", F.col("id") % 3).write.format("delta").save(path)
    layout = TableSettings(
        path=path,
        layer="gold",
        cluster_by=["x"],
        target_file_size="32m",
        data_skipping_stats_columns=["x"],
    )
    changed = apply_layout(spark, path, layout)
    assert changed == {
        "properties": {"delta.dataSkippingStatsColumns": "x"},
        "cluster_by": ["x"],
    }
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert detail["properties"]["delta.dataSkippingStatsColumns"] == "x"
    assert list(detail["clusteringColumns"]) == ["x"]
    assert apply_layout(spark, path, layout) == {"properties": {}}  # idempotent


def test_incremental_zorder_touches_only_changed_partitions(spark, tmp_path):
    path = str(tmp_path / "fact")
    layout = TableSettings(path=path, layer="gold", partition_by=["d"], zorder_by=["c"])
    _write_days(spark, path, [D1, D2], mode="overwrite")
    assert changed_partitions(spark, path) is None  # never optimized: everything
    first = optimize(spark, path, layout)
    assert (first.mode, first.files_before, first.files_after) == ("zorder", 4, 2)
    assert (first.files_removed, first.files_added) == (4, 2)
    assert first.bytes_removed > 0 and first.bytes_added > 0
    assert changed_partitions(spark, path) == []
    _write_days(spark, path, [D2])
    changed = changed_partitions(spark, path)
    assert changed == [{"d": "2025-01-02"}]
    second = optimize(spark, path, layout, partitions=changed)
    assert (second.files_removed, second.files_added) == (3, 1)  # D1's file untouched
    assert second.files_after == 2
    nothing = optimize(spark, path, layout, partitions=[])
    assert nothing.skipped == "no changes"


def test_partition_predicate_quotes_names_and_values():
    assert partition_predicate([{"d": "2025-01-02"}, {"d": None}]) == (
        "(`d` = '2025-01-02') OR (`d` IS NULL)"
    )
    assert partition_predicate([{"d": "x' OR 1=1 --"}]) == "(`d` = 'x\\' OR 1=1 --')"


def test_vacuum_refuses_retention_below_safety(spark, tmp_path):
    path = str(tmp_path / "v")
    spark.range(3).write.format("delta").save(path)
    assert safety_retention_hours(spark, path) == 168.0
    with pytest.raises(VacuumRetentionError) as err:
        vacuum(spark, path, table="v", retention_hours=1)
    assert str(err.value) == (
        "VACUUM of table 'v': retention 1.0 h is below the table's safety retention 168.0 h "
        "(delta.deletedFileRetentionDuration); set "
        "jobs.maintain.allow_retention_below_safety: true to override"
    )


def test_vacuum_override_is_logged_and_deletes(spark, tmp_path, caplog):
    path = str(tmp_path / "v")
    spark.range(3).write.format("delta").save(path)
    spark.range(3).write.format("delta").mode("overwrite").save(path)  # 1 file now unreferenced
    with caplog.at_level(logging.WARNING, logger="lakehouse.tuning.maintenance"):
        out = vacuum(spark, path, table="v", retention_hours=0, allow_below_safety=True)
    assert out["override"] is True
    assert out["files_deleted"] >= 1
    assert "BELOW the safety retention 168.0 h" in caplog.text
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    assert spark.conf.get(key, None) in (None, "true")  # restored


def _parquet(table: str) -> list[str]:
    return sorted(f for f in os.listdir(table) if f.endswith(".parquet"))


def _stray_file(table: str, *, hours_old: float) -> str:
    """An unreferenced data file (as a failed write leaves behind), ``hours_old`` old."""
    stray = os.path.join(table, "part-99999-stray.snappy.parquet")
    with open(stray, "wb") as fh:
        fh.write(b"not referenced by the Delta log")
    then = time.time() - hours_old * 3600
    os.utime(stray, (then, then))
    return stray


def test_vacuum_retention_decides_what_is_deleted(spark, tmp_path):
    """Delta 4.2 ignores ``RETAIN n HOURS`` for n != 0; the retention must still take effect."""
    path = str(tmp_path / "v")
    spark.range(3).write.format("delta").save(path)
    stray = _stray_file(path, hours_old=2)
    kept = vacuum(spark, path, table="v")  # safety retention: 168 h
    assert (kept["retention_hours"], kept["files_deleted"]) == (168.0, 0)
    assert os.path.exists(stray)
    three = vacuum(spark, path, table="v", retention_hours=3, allow_below_safety=True)
    assert (three["files_deleted"], three["retention_changed"]) == (0, True)
    assert os.path.exists(stray)  # 2 h old, retention 3 h
    short = vacuum(spark, path, table="v", retention_hours=1.5, allow_below_safety=True)
    assert short["files_deleted"] == 1
    assert not os.path.exists(stray)  # 2 h old, retention 1.5 h
    detail = DeltaTable.forPath(spark, path).detail().first()["properties"]
    assert detail["delta.deletedFileRetentionDuration"] == "interval 5400 seconds"
    assert detail["lakehouse.safetyRetentionDuration"] == "interval 168 hours"
    assert current_retention_hours(spark, path) == 1.5
    assert sorted(r.id for r in spark.read.format("delta").load(path).collect()) == [0, 1, 2]


def test_vacuum_retention_zero_deletes_overwritten_file_default_keeps_it(spark, tmp_path):
    path = str(tmp_path / "v")
    spark.range(3).coalesce(1).write.format("delta").save(path)
    spark.range(3, 6).coalesce(1).write.format("delta").mode("overwrite").save(path)
    assert len(_parquet(path)) == 2
    assert vacuum(spark, path, table="v")["files_deleted"] == 0
    assert len(_parquet(path)) == 2
    out = vacuum(spark, path, table="v", retention_hours=0, allow_below_safety=True)
    assert out["files_deleted"] == 1
    assert len(_parquet(path)) == 1
    assert sorted(r.id for r in spark.read.format("delta").load(path).collect()) == [3, 4, 5]


def test_vacuum_guard_survives_an_override(spark, tmp_path):
    """The lowered table property does not become the new safety retention."""
    path = str(tmp_path / "v")
    spark.range(3).write.format("delta").save(path)
    vacuum(spark, path, table="v", retention_hours=1, allow_below_safety=True)
    assert current_retention_hours(spark, path) == 1.0
    assert safety_retention_hours(spark, path) == 168.0
    with pytest.raises(VacuumRetentionError, match=r"retention 1\.0 h is below .* 168\.0 h"):
        vacuum(spark, path, table="v", retention_hours=1)
    with pytest.raises(VacuumRetentionError, match=r"retention 24\.0 h is below .* 168\.0 h"):
        vacuum(spark, path, table="v", retention_hours=24)
    above = vacuum(spark, path, table="v", retention_hours=200)
    assert (above["override"], current_retention_hours(spark, path)) == (False, 200.0)
    back = vacuum(spark, path, table="v")  # no retention: back to the safety retention
    assert (back["retention_hours"], current_retention_hours(spark, path)) == (168.0, 168.0)


def test_vacuum_keeps_a_table_retention_set_outside(spark, tmp_path):
    path = str(tmp_path / "v")
    spark.range(3).write.format("delta").save(path)
    spark.sql(
        f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES "
        "('delta.deletedFileRetentionDuration' = 'interval 30 days')"
    )
    assert safety_retention_hours(spark, path) == 720.0
    out = vacuum(spark, path, table="v")
    assert (out["retention_hours"], out["retention_changed"]) == (720.0, False)
    with pytest.raises(VacuumRetentionError, match=r"retention 168\.0 h is below .* 720\.0 h"):
        vacuum(spark, path, table="v", retention_hours=168)
    assert current_retention_hours(spark, path) == 720.0  # refused before anything changed


def _maintain_settings(tmp_path, **maintain_cfg):
    return load_config(
        "local",
        conf_dir=REPO / "conf",
        overrides={
            "paths": {"data_root": str(tmp_path / "data")},
            "jobs": {"maintain": {"tables": ["fact_sales"], "optimize": False, **maintain_cfg}},
        },
    )


def test_maintain_keys_reach_vacuum(spark, tmp_path):
    """jobs.maintain.vacuum_retention_hours / vacuum_listing_parallelism change what the
    job's VACUUM does (both keys unset: the safety retention and 4 x parallelism, min 8)."""
    defaults = _maintain_settings(tmp_path)
    fact = defaults.table_path("fact_sales")
    spark.range(3).withColumn("order_date", F.lit(D1)).write.format("delta").save(fact)
    stray = _stray_file(fact, hours_old=2)
    plain = execute_job(spark, defaults, "maintain", batch_id="b1")
    entry = plain.details["tables"]["fact_sales"]["vacuum"]
    assert (entry["retention_hours"], entry["listing_parallelism"]) == (168.0, 8)
    assert entry["files_deleted"] == 0 and os.path.exists(stray)
    tuned = _maintain_settings(
        tmp_path,
        vacuum_retention_hours=1,
        allow_retention_below_safety=True,
        vacuum_listing_parallelism=3,
        vacuum_interval_hours=0,  # look again now, not a day after the first look
    )
    result = execute_job(spark, tuned, "maintain", batch_id="b2")
    entry = result.details["tables"]["fact_sales"]["vacuum"]
    assert (entry["retention_hours"], entry["listing_parallelism"]) == (1.0, 3)
    assert entry["files_deleted"] == 1 and not os.path.exists(stray)


def test_vacuum_lists_with_bounded_tasks(spark, tmp_path):
    """Spark's default listing parallelism (10000) would make VACUUM run 10000 tasks."""
    path = str(tmp_path / "v")
    spark.range(3).write.format("delta").save(path)
    sc = spark.sparkContext
    key = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "50")  # stands in for Spark's 10000
    sc.setJobGroup("test-vacuum-listing", "vacuum")
    try:
        out = vacuum(spark, path, table="v", listing_parallelism=3)
        assert spark.conf.get(key) == "50"  # restored
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)
    tracker = sc.statusTracker()
    stages = [
        tracker.getStageInfo(stage)
        for job in tracker.getJobIdsForGroup("test-vacuum-listing")
        for stage in (tracker.getJobInfo(job).stageIds if tracker.getJobInfo(job) else [])
    ]
    tasks = [s.numTasks for s in stages if s is not None]
    assert tasks, "VACUUM ran no Spark jobs in the group"
    assert max(tasks) <= 3
    assert out["listing_parallelism"] == 3


def test_explain_skipping_counts_files_skipped_by_stats(spark, tmp_path):
    path = str(tmp_path / "s")
    # 4 files with disjoint x ranges: a point filter can skip 3 of them by min/max.
    spark.range(0, 400, 1, 4).withColumn("x", F.col("id")).write.format("delta").save(path)
    report = explain_skipping(spark, path, F.col("x") == 150)
    assert (report.files_read, report.files_total, report.files_skipped) == (1, 4, 3)
    everything = explain_skipping(spark, path, F.col("x") >= 0)
    assert everything.files_read == 4


def test_zorder_ranges_cut_files_on_curve_cells(spark, tmp_path):
    """4 ranges per column and 16 target files: each file is one cell of a 4 x 4 grid over
    (x, y), so a point filter on x or y reads the 4 files of its column (mean <= 4.5; with
    Delta's defaults, 1000 ranges + noise, this table reads 5-7) and on both ~1 (<= 2)."""
    path = str(tmp_path / "z")
    spark.range(0, 160_000, 1, 16).select(
        (F.rand(11) * 1_000_000).cast("int").alias("x"),
        (F.rand(22) * 1_000_000).cast("int").alias("y"),
    ).write.format("delta").save(path)
    size = int(DeltaTable.forPath(spark, path).detail().first()["sizeInBytes"])
    table = TableSettings(
        path=path,
        layer="gold",
        zorder_by=["x", "y"],
        zorder_ranges=4,
        target_file_size=f"{size // 16}b",
    )
    report = optimize(spark, path, table)
    assert report.mode == "zorder" and 12 <= report.files_after <= 16
    points = spark.read.format("delta").load(path).limit(5).collect()

    def mean_read(pred: Callable[[Row], Column]) -> float:
        return sum(explain_skipping(spark, path, pred(r)).files_read for r in points) / 5

    assert mean_read(lambda r: F.col("x") == r["x"]) <= 4.5
    assert mean_read(lambda r: F.col("y") == r["y"]) <= 4.5
    assert mean_read(lambda r: (F.col("x") == r["x"]) & (F.col("y") == r["y"])) <= 2
    # the session is left as it was
    assert spark.conf.get("spark.databricks.io.skipping.mdc.rangeId.max", None) in (None, "1000")


def test_changed_partitions_of_an_unpartitioned_table(spark, tmp_path):
    """Unpartitioned adds carry "partitionValues": {}, which JSON schema inference drops."""
    from delta.tables import DeltaTable

    path = str(tmp_path / "flat")
    spark.range(4).repartition(2).write.format("delta").save(path)
    DeltaTable.forPath(spark, path).optimize().executeCompaction()
    assert changed_partitions(spark, path) == []
    spark.range(2).write.format("delta").mode("append").save(path)
    assert changed_partitions(spark, path) == [{}]
