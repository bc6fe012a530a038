"""Drill 16: SIGKILL at commit boundaries of one run, then re-run.

Pass criterion: a run of ``bronze_ingest → silver_customers → silver_orders →
gold_daily_sales`` on small generated data is killed (``kill -9`` of its process group,
driver and JVM) right after its k-th Delta commit, for several k spread over the run
(between two bronze writes of one increment, inside silver, inside gold). After one normal
re-run, every table equals the tables of an uninterrupted run: the derived tables exactly,
bronze and the quarantines row for row (ignoring ingestion times and batch ids, which
differ between runs by design). Nothing is lost, nothing is duplicated.

The kill points are found by polling the ``_delta_log`` folders, so a kill can land a
little after the k-th commit. By default four boundaries spread over the run are tried (at
10%, 35%, 60% and 85% of its commits); ``DRILL16_STEP=n`` tries every n-th boundary
(``DRILL16_STEP=1``: every one, about 25 runs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from harness.generator import generate_landing
from lakehouse.config import Settings, load_config
from lakehouse.pipeline import run_pipeline
from lakehouse.spark.delta import is_delta_table

JOBS = ("bronze_ingest", "silver_customers", "silver_orders", "gold_daily_sales")
DERIVED = ("orders", "products", "dim_customer", "fact_sales", "daily_revenue")
RAW = (
    "bronze_orders",
    "bronze_customers",
    "bronze_products",
    "quarantine_bronze",
    "quarantine_silver_orders",
    "quarantine_silver_customers",
)
#: Columns that differ between two runs over the same files by design.
RUN_COLUMNS = ("_ingest_time", "_batch_id", "batch_id", "quarantined_at", "record", "row_hash")


def commits(root: Path) -> int:
    return sum(1 for p in root.rglob("_delta_log/*.json") if "_checkpoints" not in p.parts)


def _settings(root: Path, conf: Path) -> Settings:
    return load_config("local", conf_dir=conf, overrides={"paths": {"data_root": str(root)}})


def _comparable(spark: SparkSession, settings: Settings, table: str) -> DataFrame | None:
    path = settings.table_path(table)
    if not is_delta_table(spark, path):
        return None
    df = spark.read.format("delta").load(path)
    root = str(Path(settings.paths.data_root).resolve())
    for col in ("_source_file", "source"):
        if col in df.columns:
            df = df.withColumn(col, F.replace(F.col(col), F.lit(root), F.lit("<root>")))
    return df.drop(*RUN_COLUMNS)


def _kill_after(cmd: list[str], env: dict[str, str], root: Path, k: int, cwd: Path) -> int:
    """Run ``cmd``; SIGKILL its process group once ``root`` holds ``k`` commits. Returns the
    number of commits when it died."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            if commits(root) >= k:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return commits(root)


@pytest.mark.slow
def test_kill_at_commit_boundaries_then_rerun_converges(
    spark: SparkSession, repo_root: Path, tmp_path: Path
) -> None:
    conf = repo_root / "conf"
    control = _settings(tmp_path / "control", conf)
    generate_landing(control.landing_path, orders=60, days=3, seed=16, malformed_fraction=0.05)
    assert run_pipeline(spark, control, jobs=JOBS, batch_id="control").ok
    total = commits(Path(control.paths.data_root))
    step = os.environ.get("DRILL16_STEP")
    if step:
        points = list(range(1, total, int(step)))
    else:  # four boundaries spread over the run: in bronze, silver and gold
        points = sorted({max(1, round(total * f)) for f in (0.1, 0.35, 0.6, 0.85)})
    killed_at = {}
    for k in points:
        root = tmp_path / f"kill-{k}"
        crashed = _settings(root, conf)
        shutil.copytree(control.landing_path, crashed.landing_path)
        path = os.pathsep.join([str(repo_root / "lib"), str(repo_root)])  # no install needed
        env = {**os.environ, "LAKEHOUSE_DATA_ROOT": str(root), "PYTHONPATH": path}
        cmd = [sys.executable, "-m", "lakehouse.cli", "--conf-dir", str(conf), "run", *JOBS]
        killed_at[k] = _kill_after(cmd, env, root, k, repo_root)
        (root / "_run.lock").unlink(missing_ok=True)  # a killed run's lock (or wait for its lease)
        assert run_pipeline(spark, crashed, jobs=JOBS, batch_id=f"rerun-{k}").ok
        for table in DERIVED + RAW:
            want, got = _comparable(spark, control, table), _comparable(spark, crashed, table)
            assert (want is None) == (got is None), f"kill at {k}: {table}"
            if want is not None and got is not None:
                assert_df_equality(
                    got, want, ignore_row_order=True, ignore_nullable=True,
                    ignore_column_order=True,
                )  # fmt: skip
    print(f"drill 16: {total} commits per run; killed after commits {killed_at}")
