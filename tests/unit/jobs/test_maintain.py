"""The maintain job: a pure plan, and a run over small silver/gold tables."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from jobs.maintain import TableState, plan
from lakehouse.config import ConfigError, load_config
from lakehouse.pipeline import execute_job
from lakehouse.spark.delta import table_version
from lakehouse.tuning.maintenance import VacuumRetentionError

#: The layout these tests give orders and fact_sales: daily partitions Z-ordered by
#: customer (the sample config clusters them instead; the clustered run is tested below).
PARTITIONED = {"partition_by": ["order_date"], "zorder_by": ["customer_id"], "cluster_by": []}


def _settings(tmp_path, *, layout=PARTITIONED, **maintain_cfg):
    return load_config(
        "local",
        overrides={
            "paths": {"data_root": str(tmp_path / "data")},
            "tables": {"orders": layout, "fact_sales": layout},
            # optimize_min_files 1 (the sample config waits for 8 new files): every test
            # here but the one about that setting wants OPTIMIZE after each write
            "jobs": {
                "maintain": {"tables": ["orders", "fact_sales"], "optimize_min_files": 1}
                | maintain_cfg
            },
        },
    )


def test_plan_is_incremental_for_partitioned_tables(tmp_path):
    settings = _settings(tmp_path)
    states = {
        "orders": TableState(exists=True, changed=[{"order_date": "2025-01-02"}]),
        "fact_sales": TableState(exists=False),
    }
    tasks = {t.table: t for t in plan(settings, settings.job("maintain"), states)}
    assert tasks["orders"].partitions == [{"order_date": "2025-01-02"}]
    assert (tasks["orders"].retention_hours, tasks["orders"].retention_override) == (168.0, False)
    assert tasks["fact_sales"].skipped == "not a Delta table"


def test_plan_refuses_short_retention_without_override(tmp_path):
    settings = _settings(tmp_path, vacuum_retention_hours=24)
    with pytest.raises(
        VacuumRetentionError,
        match=re.escape("retention 24.0 h is below the table's safety retention 168.0 h"),
    ):
        plan(settings, settings.job("maintain"), {"orders": TableState(exists=True)})
    allowed = _settings(tmp_path, vacuum_retention_hours=24, allow_retention_below_safety=True)
    (task, _) = plan(allowed, allowed.job("maintain"), {"orders": TableState(exists=True)})
    assert task.retention_override is True


def test_unknown_or_undeclared_table_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"jobs\.maintain\.tables\.0: unknown table 'nope'"):
        _settings(tmp_path, tables=["nope"])
    with pytest.raises(
        ConfigError,
        match=r"jobs\.maintain\.tables\.0: table 'quarantine_bronze' is not declared in the "
        r"job's inputs or outputs",
    ):
        _settings(tmp_path, tables=["quarantine_bronze"])


def test_run_optimizes_zorders_and_vacuums(spark, tmp_path):
    settings = _settings(tmp_path)
    rows = [(i, dt.date(2025, 1, 1 + i % 2), i % 5, float(i)) for i in range(20)]
    df = spark.createDataFrame(
        rows, "order_id long, order_date date, customer_id long, amount double"
    )
    fact = settings.table_path("fact_sales")
    df.repartition(3).write.format("delta").partitionBy("order_date").save(fact)
    result = execute_job(spark, settings, "maintain", batch_id="b1")
    assert result.details["tables"]["orders"] == {"skipped": "not a Delta table"}
    entry = result.details["tables"]["fact_sales"]
    assert entry["layout"] == {"properties": {}}
    opt = entry["optimize"]
    assert (opt["mode"], opt["files_before"], opt["files_after"]) == ("zorder", 6, 2)
    assert (opt["files_removed"], opt["files_added"]) == (6, 2)
    assert opt["bytes_removed"] > 0
    assert entry["vacuum"]["retention_hours"] == 168.0
    assert result.details["aqe"] == {"profile": "default", "settings": {}}
    # second run: no commit since maintain left the table -> not even its history is read
    version = table_version(spark, fact)
    again = execute_job(spark, settings, "maintain", batch_id="b2")
    assert again.details["tables"]["fact_sales"] == {
        "skipped": "no commits since the last maintenance"
    }
    assert result.details["noop"] is False and again.details["noop"] is True
    again_version = table_version(spark, fact)
    assert again_version == version
    # an append: OPTIMIZE only its partition; the VACUUM look is not due yet (24 h)
    spark.createDataFrame(
        [(99, dt.date(2025, 1, 3), 1, 1.0), (98, dt.date(2025, 1, 3), 2, 1.0)],
        "order_id long, order_date date, customer_id long, amount double",
    ).repartition(2).write.format("delta").mode("append").save(fact)
    third = execute_job(spark, settings, "maintain", batch_id="b3").details["tables"]["fact_sales"]
    assert third["optimize"]["partitions"] == [{"order_date": "2025-01-03"}]
    assert third["vacuum"]["skipped"].startswith("looked 0.0 h ago; vacuum_interval_hours is 24")
    # vacuum_interval_hours: 0 -> the look runs on every run, even with nothing new
    every = _settings(tmp_path, vacuum_interval_hours=0)
    fourth = execute_job(spark, every, "maintain", batch_id="b4").details["tables"]["fact_sales"]
    assert fourth["vacuum"]["files_deleted"] == 0


def test_run_clusters_a_liquid_clustered_table_once_per_change(spark, tmp_path):
    settings = _settings(tmp_path, layout={"cluster_by": ["order_date"]})
    fact = settings.table_path("fact_sales")
    rows = [(i, dt.date(2025, 1, 1 + i % 3), i % 5, float(i)) for i in range(30)]
    schema = "order_id long, order_date date, customer_id long, amount double"
    spark.createDataFrame(rows, schema).repartition(3).write.format("delta").save(fact)
    first = execute_job(spark, settings, "maintain", batch_id="c1").details["tables"]["fact_sales"]
    assert first["layout"] == {"properties": {}, "cluster_by": ["order_date"]}
    opt = first["optimize"]
    assert (opt["mode"], opt["files_before"], opt["files_after"]) == ("cluster", 3, 1)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{fact}`").first()
    assert detail is not None and list(detail["clusteringColumns"]) == ["order_date"]
    again = execute_job(spark, settings, "maintain", batch_id="c2").details["tables"]
    assert again["fact_sales"] == {"skipped": "no commits since the last maintenance"}


def test_optimize_waits_for_optimize_min_files_new_files(spark, tmp_path):
    settings = _settings(tmp_path, layout={"cluster_by": []}, optimize_min_files=3)
    fact = settings.table_path("fact_sales")
    schema = "order_id long, order_date date, customer_id long, amount double"

    def append(n: int) -> None:
        rows = [(n, dt.date(2025, 1, 1), 1, 1.0)]
        spark.createDataFrame(rows, schema).write.format("delta").mode("append").save(fact)

    append(0)
    append(1)
    first = execute_job(spark, settings, "maintain", batch_id="m1").details["tables"]
    assert first["fact_sales"]["optimize"]["files_before"] == 2  # never optimized: it runs
    append(2)
    append(3)  # 2 new files < 3
    second = execute_job(spark, settings, "maintain", batch_id="m2").details["tables"]
    assert second["fact_sales"]["optimize"] == {
        "skipped": "2 files added since the last OPTIMIZE; optimize_min_files is 3"
    }
    assert spark.sql(f"DESCRIBE DETAIL delta.`{fact}`").first()["numFiles"] == 3
    append(4)  # the third new file since the OPTIMIZE
    third = execute_job(spark, settings, "maintain", batch_id="m3").details["tables"]
    opt = third["fact_sales"]["optimize"]
    assert (opt["files_before"], opt["files_after"]) == (4, 1)


@pytest.mark.slow  # five CDC batches and three maintain runs: in the full gate
def test_the_cdc_event_log_beside_a_table_is_compacted_and_vacuumed_with_it(spark, tmp_path):
    """dim_customer's event log (``_cdc_log``, one small append per batch with a delete)
    is maintained as ``dim_customer__cdc_log``: OPTIMIZE once it has enough new files,
    VACUUM, and skipped when nothing was logged since."""
    from lakehouse.scd2 import SCD2Spec, apply_scd2
    from lakehouse.scd2.log import log_location

    settings = _settings(tmp_path, tables=["dim_customer"], optimize_min_files=2)
    path = settings.table_path("dim_customer")
    spec = SCD2Spec(keys=["id"], sequence_by="seq", delete_when="op = 'D'")
    feed = "id string, v string, op string, seq int"
    for seq in (2, 4, 6):  # each batch: a tombstone for a key never seen -> one log file
        rows = [(f"k{seq}", None, "D", seq), ("a", f"v{seq}", "U", seq)]
        apply_scd2(spark, path, spark.createDataFrame(rows, feed), spec)
    log_path = log_location(path)
    files_before = spark.sql(f"DESCRIBE DETAIL delta.`{log_path}`").first()["numFiles"]
    assert files_before >= 3

    first = execute_job(spark, settings, "maintain", batch_id="l1")
    entry = first.details["tables"]["dim_customer__cdc_log"]
    assert entry["optimize"]["mode"] == "compact"  # never optimized: it runs
    assert (entry["optimize"]["files_before"], entry["optimize"]["files_after"]) == (
        files_before,
        1,
    )
    assert entry["vacuum"]["retention_hours"] == 168.0
    assert first.tables["dim_customer__cdc_log"] == table_version(spark, log_path)
    # the compacted log still holds the tombstones: a late upsert of k4 (deleted at 4)
    # opens a version that ends at 4, not a current one
    late = [("k4", "late", "U", 1)]
    apply_scd2(spark, path, spark.createDataFrame(late, feed), spec)
    k4 = spark.read.format("delta").load(path).where("id = 'k4'")
    assert [tuple(r) for r in k4.select("v", "valid_from", "valid_to").collect()] == [
        ("late", 1, 4)
    ]
    # that batch logged nothing (the version shows the upsert): the log is left alone
    second = execute_job(spark, settings, "maintain", batch_id="l2").details["tables"]
    assert second["dim_customer__cdc_log"] == {"skipped": "no commits since the last maintenance"}
    # one more tombstone: one new log file, below the 2 that OPTIMIZE waits for
    apply_scd2(spark, path, spark.createDataFrame([("k8", None, "D", 8)], feed), spec)
    third = execute_job(spark, settings, "maintain", batch_id="l3").details["tables"]
    assert third["dim_customer__cdc_log"]["optimize"] == {
        "skipped": "1 files added since the last OPTIMIZE; optimize_min_files is 2"
    }
