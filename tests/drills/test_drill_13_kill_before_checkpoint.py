"""Drill 13: SIGKILL between a silver commit and its streaming checkpoint.

Pass criterion: a run is killed (``kill -9`` of the driver) right after ``silver_orders``
committed an increment to ``orders`` and before Structured Streaming recorded the increment
in the checkpoint (``commits/<id>`` absent). The next run replays the same increment (same
id, same bronze versions); Delta skips the writes that had committed (their ``txnAppId`` /
``txnVersion``), the run reports the increment as replayed, and ``orders``, ``products`` and
the silver quarantine equal those of an uninterrupted run: no duplicate, nothing lost.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from harness.generator import generate_landing
from lakehouse.config import Settings, load_config
from lakehouse.pipeline import run_pipeline
from lakehouse.pipeline.incremental import checkpoint_path

JOBS = ("bronze_ingest", "silver_orders")
#: Replaces silver_orders' increment handler with one that dies right after it returns,
#: i.e. after the orders commit and before Spark commits the micro-batch to the checkpoint.
KILLER = textwrap.dedent(
    """
    import os
    import signal

    import jobs.silver_orders as real
    from jobs.silver_orders import Config  # noqa: F401  (the loader validates with it)

    _handle = real._orders


    def _killed_after_commit(ctx, inc):
        _handle(ctx, inc)
        os.kill(os.getpid(), signal.SIGKILL)


    real._orders = _killed_after_commit
    run = real.run
    """
)


def _settings(root: Path, conf_dir: Path) -> Settings:
    return load_config("local", conf_dir=conf_dir, overrides={"paths": {"data_root": str(root)}})


def _rows(spark: SparkSession, settings: Settings, table: str):
    df = spark.read.format("delta").load(settings.table_path(table))
    return df.drop("batch_id", "quarantined_at")


@pytest.mark.slow
def test_kill_between_silver_commit_and_checkpoint_converges(
    spark: SparkSession, repo_root: Path, tmp_path: Path
) -> None:
    control = _settings(tmp_path / "control", repo_root / "conf")
    crashed = _settings(tmp_path / "crashed", repo_root / "conf")
    generate_landing(control.landing_path, orders=80, days=4, seed=13, malformed_fraction=0.03)
    shutil.copytree(control.landing_path, crashed.landing_path)
    assert run_pipeline(spark, control, jobs=JOBS, batch_id="control").ok

    # the killing run: same configuration except silver_orders' module
    conf = tmp_path / "conf"
    shutil.copytree(repo_root / "conf", conf)
    job_yaml = conf / "jobs" / "silver_orders.yaml"
    job_yaml.write_text(
        job_yaml.read_text().replace("module: jobs.silver_orders", "module: drill_killer")
    )
    (tmp_path / "drill_killer.py").write_text(KILLER)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo_root / "lib"), str(repo_root)]),
        "LAKEHOUSE_DATA_ROOT": str(crashed.paths.data_root),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakehouse.cli", "--conf-dir", str(conf), "run", *JOBS],
        cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=900)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the JVM, if it outlived the driver
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, output[-3000:]

    # the orders commit is there, the checkpoint's commit of that increment is not
    orders_log = Path(crashed.table_path("orders")) / "_delta_log"
    assert sorted(p.name for p in orders_log.glob("*.json"))[:1] == ["00000000000000000000.json"]
    ckpt = Path(checkpoint_path(crashed, "silver_orders", "bronze_orders"))
    assert (ckpt / "offsets" / "0").exists()
    assert not (ckpt / "commits" / "0").exists()

    report = run_pipeline(spark, crashed, jobs=JOBS, batch_id="after-crash")
    silver = {j.job: j for j in report.jobs}["silver_orders"]
    orders_stream = [s for s in silver.details["increments"] if s["source"] == "bronze_orders"]
    assert orders_stream[0]["increments"][0]["replayed"] == ["orders"]
    for table in ("orders", "products"):
        assert_df_equality(
            _rows(spark, crashed, table),
            _rows(spark, control, table),
            ignore_row_order=True,
            ignore_nullable=True,
        )
    # quarantine rows carry their landing file's path (under each data root): compare the
    # stage and reason of every row
    assert_df_equality(
        _rows(spark, crashed, "quarantine_silver_orders").select("stage", "reason"),
        _rows(spark, control, "quarantine_silver_orders").select("stage", "reason"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
