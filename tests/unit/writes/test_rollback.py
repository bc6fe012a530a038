"""Rollback of a run: Delta RESTORE to the version before the run's first commit."""

from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakehouse.cli.rollback import main
from lakehouse.config import Settings
from lakehouse.writes.idempotency import txn_identity
from lakehouse.writes.rollback import RollbackError, rollback_table


def _append(spark: SparkSession, path: str, ids: range, batch: str, step: int = 0) -> None:
    txn = txn_identity("job", batch, table="orders", step=step)
    txn.apply(spark.range(ids.start, ids.stop).write.format("delta").mode("append")).save(path)


def test_rollback_restores_the_version_before_the_run(
    spark: SparkSession, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    path = settings.table_path("orders")
    _append(spark, path, range(0, 2), "b0")  # v0
    _append(spark, path, range(2, 4), "b1")  # v1
    with txn_identity("job", "b2", table="orders").session(spark):  # v2
        DeltaTable.forPath(spark, path).delete("id = 0")
    _append(spark, path, range(9, 10), "b2", step=1)  # v3 (same batch, next step)
    before_b2 = spark.read.format("delta").option("versionAsOf", 1).load(path).collect()

    with pytest.raises(RollbackError) as info:
        rollback_table(spark, path, "b1", table="orders", out=None)
    assert str(info.value) == (
        "orders: commits [2, 3] landed after batch b1 (last commit v1); undoing the batch "
        "would undo them too. Pass force=True (--force) to do it anyway"
    )
    with pytest.raises(RollbackError, match=r"^orders: commits \[1, 2, 3\] landed after batch b0"):
        rollback_table(spark, path, "b0", table="orders", out=None)

    dry = rollback_table(spark, path, "b2", table="orders", dry_run=True, out=None)
    assert dry.describe() == (
        f"orders: would RESTORE {path} from v3 to v1 (undoing batch b2: commits v2, v3)"
    )
    assert DeltaTable.forPath(spark, path).history(1).first()["version"] == 3

    assert main(["--batch-id", "b2", "--table", "orders"], spark=spark, settings=settings) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"orders: restored {path} from v3 to v1 as new version v4 (undid batch b2: commits v2, v3); "
    )
    assert_df_equality(
        spark.read.format("delta").load(path),
        spark.createDataFrame(before_b2, "id long"),
        ignore_row_order=True,
    )
    # a second rollback of the same run is a no-op
    again = rollback_table(spark, path, "b2", table="orders", out=None)
    assert again.action == "already rolled back"
    assert DeltaTable.forPath(spark, path).history(1).first()["version"] == 4
    assert main(["--batch-id", "nope", "--table", "orders"], spark=spark, settings=settings) == 1
    captured = capsys.readouterr()
    assert captured.out == "orders: no commit of batch nope; nothing to do\n"
    assert captured.err == (
        "rollback failed: no table has commits of batch nope (an unknown batch id, or one "
        "that has not run yet); nothing was changed\n"
    )
    assert DeltaTable.forPath(spark, path).history(1).first()["version"] == 4


def test_a_table_the_batch_created_is_emptied_reversibly(
    spark: SparkSession, settings: Settings
) -> None:
    path = settings.table_path("orders")
    _append(spark, path, range(0, 3), "b0")  # v0: the batch creates the table
    _append(spark, path, range(3, 5), "b0", step=1)  # v1

    dry = rollback_table(spark, path, "b0", table="orders", dry_run=True, out=None)
    assert dry.describe() == (
        f"orders: would empty {path} with a DELETE at v1 (batch b0 created it: commits v0, v1)"
    )
    done = rollback_table(spark, path, "b0", table="orders", out=None)
    assert done.describe().startswith(
        f"orders: emptied {path} with a DELETE as new version v2 (batch b0 created it: "
        f"commits v0, v1; undo with RESTORE TABLE delta.`{path}` TO VERSION AS OF 1); "
    )
    assert done.metrics["numRemovedFiles"] >= 2
    assert spark.read.format("delta").load(path).count() == 0
    assert rollback_table(spark, path, "b0", table="orders", out=None).action == (
        "already rolled back"
    )
    spark.sql(f"RESTORE TABLE delta.`{path}` TO VERSION AS OF 1")  # the undo it names
    assert sorted(r.id for r in spark.read.format("delta").load(path).collect()) == [0, 1, 2, 3, 4]


def _write(spark: SparkSession, path: str, ids: range, batch: str, table: str) -> None:
    txn = txn_identity("job", batch, table=table)
    txn.apply(spark.range(ids.start, ids.stop).write.format("delta").mode("append")).save(path)


def test_a_rollback_that_would_half_apply_changes_nothing(
    spark: SparkSession, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["bronze_orders", "orders", "quarantine_bronze"]
    paths = {n: settings.table_path(n) for n in names}
    _write(spark, paths["bronze_orders"], range(0, 2), "b0", "bronze_orders")  # v0
    _write(spark, paths["orders"], range(0, 2), "b0", "orders")  # v0
    _write(spark, paths["bronze_orders"], range(2, 4), "b1", "bronze_orders")  # v1
    _write(spark, paths["quarantine_bronze"], range(0, 1), "b1", "quarantine_bronze")  # v0
    _write(spark, paths["orders"], range(2, 4), "b1", "orders")  # v1
    _write(spark, paths["orders"], range(4, 6), "b2", "orders")  # v2: a later run
    before = {
        n: DeltaTable.forPath(spark, p).history(1).first()["version"] for n, p in paths.items()
    }

    code = main(
        ["--batch-id", "b1", *[f"--table={n}" for n in names]], spark=spark, settings=settings
    )
    assert code == 2
    assert capsys.readouterr().err == (
        "rollback failed: rollback of batch b1 refused, nothing was changed:\n"
        "  orders: commits [2] landed after batch b1 (last commit v1); undoing the batch "
        "would undo them too. Pass force=True (--force) to do it anyway\n"
    )
    after = {
        n: DeltaTable.forPath(spark, p).history(1).first()["version"] for n, p in paths.items()
    }
    assert after == before

    assert main(["--batch-id", "b1", *[f"--table={n}" for n in names], "--force"],
                spark=spark, settings=settings) == 0  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == names
    counts = {n: spark.read.format("delta").load(p).count() for n, p in paths.items()}
    assert counts == {"bronze_orders": 2, "orders": 2, "quarantine_bronze": 0}


def test_a_damaged_delta_log_is_named_not_a_traceback(
    spark: SparkSession, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = settings.table_path("bronze_orders"), settings.table_path("orders")
    _write(spark, good, range(0, 2), "b0", "bronze_orders")
    _write(spark, good, range(2, 4), "b1", "bronze_orders")
    _write(spark, bad, range(0, 2), "b0", "orders")
    _write(spark, bad, range(2, 4), "b1", "orders")
    log = Path(bad) / "_delta_log" / "00000000000000000001.json"
    log.write_text('{"commitInfo": {"not json at all\n')

    code = main(["--batch-id", "b1", "--table", "bronze_orders", "--table", "orders"],
                spark=spark, settings=settings)  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "rollback failed: rollback of batch b1 refused, nothing was changed:\n"
        f"  orders: cannot read the Delta table at {bad} (is its _delta_log damaged?): "
    )
    assert "Traceback" not in err and "Py4J" not in err and len(err.splitlines()) == 2
    assert DeltaTable.forPath(spark, good).history(1).first()["version"] == 1


def test_a_cdc_tables_event_log_is_rolled_back_with_it(
    spark: SparkSession, settings: Settings
) -> None:
    from lakehouse.scd2 import SCD2Spec, apply_scd2
    from lakehouse.scd2.log import log_location
    from lakehouse.writes.idempotency import commit_metadata
    from lakehouse.writes.rollback import rollback_batch

    spec = SCD2Spec(keys=["id"], sequence_by="seq", delete_when="op = 'D'")
    path = settings.table_path("dim_customer")
    feed = "id string, v string, op string, seq int"
    with commit_metadata(spark, job="j", batch_id="b0"):
        apply_scd2(spark, path, spark.createDataFrame([("a", "x", "U", 1)], feed), spec)
    with commit_metadata(spark, job="j", batch_id="b1"):  # a tombstone for b, logged
        apply_scd2(spark, path, spark.createDataFrame([("b", None, "D", 5)], feed), spec)
    log = log_location(path)
    assert spark.read.format("delta").load(log).count() == 1
    results = rollback_batch(spark, settings, "b1", tables=["dim_customer"], out=None)
    assert {r.table: r.action for r in results} == {
        "dim_customer": "nothing to do",  # b1 changed no row of the table
        "dim_customer (event log)": "emptied",
    }
    assert spark.read.format("delta").load(log).count() == 0
    # the tombstone is gone: an older upsert of b is now current
    apply_scd2(spark, path, spark.createDataFrame([("b", "y", "U", 1)], feed), spec)
    current = spark.read.format("delta").load(path).where("is_current AND id = 'b'")
    assert current.count() == 1
