"""Drill 1: SIGKILL the job process in the middle of a MERGE.

Pass criterion: after ``kill -9`` of the job's whole process group (Python driver and its
JVM) while the MERGE is executing, the table is readable at its previous version with
exactly its previous content (no partial data: no new commit in ``_delta_log``); re-running
the same batch (same idempotent-write identity) converges to the table an uninterrupted
run produces, and a further re-run changes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakehouse.spark.delta import table_version
from lakehouse.writes.idempotency import txn_identity

SCHEMA = "id long, v string"
UPDATES = [(i, "new") for i in range(3, 9)]

CHILD = textwrap.dedent(
    """
    import sys, time
    from lakehouse.config import load_config
    from lakehouse.writes.idempotency import txn_identity
    from lakehouse.spark.session import build_spark_session
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    path, marker, conf_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    spark = build_spark_session(load_config("local", conf_dir=conf_dir), extra_conf={
        "spark.master": "local[1]", "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "1", "spark.databricks.delta.snapshotPartitions": "1",
        "spark.ui.showConsoleProgress": "false"})

    def slow(x):
        import time
        open(marker, "a").close()      # the MERGE is executing now
        time.sleep(3)
        return x

    src = spark.createDataFrame([(i, "new") for i in range(3, 9)], "id long, v string")
    src = src.withColumn("id", F.udf(slow, "long")("id"))
    with txn_identity("drill1", "b2", table="t").session(spark):
        (DeltaTable.forPath(spark, path).alias("t").merge(src.alias("s"), "t.id = s.id")
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    print("MERGE-DONE", flush=True)
    """
)


def _merge(spark: SparkSession, path: str) -> None:
    src = spark.createDataFrame(UPDATES, SCHEMA)
    with txn_identity("drill1", "b2", table="t").session(spark):
        (
            DeltaTable.forPath(spark, path).alias("t")
            .merge(src.alias("s"), "t.id = s.id")
            .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
        )  # fmt: skip


@pytest.mark.slow
def test_sigkill_mid_merge_leaves_previous_version(
    spark: SparkSession, tmp_path: Path, repo_root: Path
) -> None:
    path = str(tmp_path / "t")
    spark.createDataFrame([(i, "old") for i in range(0, 3)], SCHEMA).write.format("delta").save(
        path
    )
    spark.createDataFrame([(i, "old") for i in range(3, 6)], SCHEMA).write.format("delta").mode(
        "append"
    ).save(path)
    before = spark.read.format("delta").load(path).collect()
    assert table_version(spark, path) == 1

    marker = tmp_path / "merge-running"
    # the library and the job modules the configuration declares (conf/jobs/*.yaml)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root / "lib"), str(repo_root)])}
    out_file, err_file = tmp_path / "child.out", tmp_path / "child.err"
    with out_file.open("w") as out_fh, err_file.open("w") as err_fh:  # files: no pipe stalls
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, path, str(marker), str(repo_root / "conf")],
            stdout=out_fh, stderr=err_fh, env=env, start_new_session=True, cwd=tmp_path,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 900
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"child exited before the MERGE ran: {err_file.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("MERGE never started within 900 s")
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its JVM, mid-MERGE
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert "MERGE-DONE" not in out_file.read_text()

    # previous version, identical content, no partial commit
    assert table_version(spark, path) == 1
    assert not (tmp_path / "t" / "_delta_log" / f"{2:020d}.json").exists()
    assert_df_equality(
        spark.read.format("delta").load(path),
        spark.createDataFrame(before, SCHEMA),
        ignore_row_order=True,
    )

    # the re-run converges to the uninterrupted result (built independently)
    _merge(spark, path)
    expected = [(i, "old") for i in range(0, 3)] + UPDATES
    assert_df_equality(
        spark.read.format("delta").load(path),
        spark.createDataFrame(expected, SCHEMA),
        ignore_row_order=True,
    )
    assert table_version(spark, path) == 2
    _merge(spark, path)  # once more: the idempotent identity makes it a no-op
    assert table_version(spark, path) == 2
