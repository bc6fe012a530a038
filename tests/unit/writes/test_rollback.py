"""Rollback of a run: Delta RESTORE to the version before the run's first commit."""

from __future__ import annotations

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
        "orders: commits [2, 3] landed after batch b1 (last commit v1); restoring to v0 "
        "would undo them too. Pass force=True (--force) to do it anyway"
    )
    with pytest.raises(RollbackError, match=r"^orders: batch b0 created the table at v0; "):
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
    assert main(["--batch-id", "nope", "--table", "orders"], spark=spark, settings=settings) == 0
    assert capsys.readouterr().out == (
        "orders: no commit of batch nope; nothing to do\nno table has commits of batch nope\n"
    )
