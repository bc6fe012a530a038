"""Drill 14: two full runs at once on one data root.

Pass criterion: while ``lakehouse run all`` runs, a second ``lakehouse run all`` on the same
data root is refused (exit 1) with an error naming the running batch and the lock file; the
first run finishes, and every landing record is in bronze exactly once (no duplicated
bronze row, no false "duplicate order_id" in silver).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from harness.generator import generate_landing


@pytest.mark.slow
def test_a_second_run_on_the_same_data_root_is_refused(
    spark: SparkSession, repo_root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    stats = generate_landing(data / "landing", orders=60, days=3, seed=4, malformed_fraction=0.0)
    path = os.pathsep.join([str(repo_root / "lib"), str(repo_root)])  # no install needed
    env = {**os.environ, "LAKEHOUSE_DATA_ROOT": str(data), "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "lakehouse.cli", "--conf-dir", str(repo_root / "conf"), "run"]
    first = subprocess.Popen(
        [*cmd, "bronze_ingest", "silver_orders", "--batch-id", "first"],
        cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lock = data / "_run.lock"
    deadline = time.monotonic() + 300
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert lock.exists(), "the first run never took the lock"
    second = subprocess.run(
        [*cmd, "all", "--batch-id", "second"],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out, _ = first.communicate(timeout=900)
    assert first.returncode == 0, out[-3000:]
    assert second.returncode == 1, second.stderr[-3000:]
    assert "locked by run 'first'" in second.stderr
    assert str(lock) in second.stderr
    assert not lock.exists()  # released at the end of the first run

    records = spark.read.format("delta").load(str(data / "bronze" / "orders")).count()
    assert records == stats["orders"]  # malformed_fraction 0: every order line, once
