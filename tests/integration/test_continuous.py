"""Continuous mode: ``lakehouse run all --continuous`` keeps the streams running.

Start it on generated landing data without any orders file, so the orders tables and
``fact_sales`` do not exist yet and the streams over them wait for them. Drop the orders
files in, see a new order reach ``fact_sales`` and its day ``daily_revenue`` without a
restart, then SIGTERM: the process stops by itself within a bounded time, exit code 0, and
leaves no process behind (its JVM included).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from harness.generator import generate_landing

HEADER = "order_id,customer_id,product_id,quantity,unit_price,order_ts"


def _wait_for(what: str, check, timeout_s: float, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            raise AssertionError(f"lakehouse exited ({proc.returncode}) before {what}")
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _committed(table: Path) -> bool:
    """Whether another process has committed the table's first version. (Polling with
    Delta's isDeltaTable from this session, a full-gate run timed out although the run had
    written both tables within a minute: a table created after polling starts is checked
    here on the file system, then read.)"""
    return (table / "_delta_log" / f"{0:020d}.json").exists()


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_continuous_run_picks_up_new_files_and_stops_on_sigterm(
    spark: SparkSession, repo_root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    landing = data / "landing"
    generate_landing(landing, orders=60, days=3, seed=2, malformed_fraction=0.0)
    held = tmp_path / "held_orders"
    shutil.move(landing / "orders", held)
    (landing / "orders").mkdir()
    log = tmp_path / "lakehouse.log"
    path = os.pathsep.join([str(repo_root / "lib"), str(repo_root)])  # no install needed
    env = {
        **os.environ,
        "LAKEHOUSE_DATA_ROOT": str(data),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": path,
    }
    cmd = [sys.executable, "-m", "lakehouse.cli", "--conf-dir", str(repo_root / "conf"), "run",
           "all", "--continuous", "--trigger", "2s"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=repo_root, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for(
            "the streams to start",
            lambda: "job gold_daily_sales: 4 stream(s) running" in log.read_text(),
            600,
            proc,
        )
        assert not _committed(data / "silver" / "orders")
        for held_file in held.iterdir():
            shutil.move(held_file, landing / "orders" / held_file.name)
        new = landing / "orders" / "orders_live.csv"
        new.write_text(f"{HEADER}\nOLIVE1,C0000001,P000001,2,9.50,2025-01-02 12:00:00\n")
        fact, daily = data / "gold" / "fact_sales", data / "gold" / "daily_revenue"

        def arrived() -> bool:
            if not (_committed(fact) and _committed(daily)):
                return False
            facts = spark.read.format("delta").load(str(fact)).where("order_id = 'OLIVE1'")
            days = spark.read.format("delta").load(str(daily)).where("order_date = '2025-01-02'")
            return facts.count() == 1 and days.count() == 1

        _wait_for("the new order in fact_sales and daily_revenue", arrived, 300, proc)
        os.kill(proc.pid, signal.SIGTERM)  # the driver process, as `kill <pid>` would
        assert proc.wait(timeout=180) == 0, log.read_text()[-3000:]
        deadline = time.monotonic() + 30
        while _alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(1)
        assert not _alive(proc.pid), "a process of the run (its JVM?) outlived it"
        text = log.read_text()
        assert "stopping the streams at the next increment boundary" in text
        # the streams over tables created after the start: silver_orders', gold's two
        assert "job silver_orders: stream over bronze_orders started" in text
        assert "job gold_daily_sales: stream over orders started" in text
        assert "job gold_daily_sales: stream over fact_sales started" in text
        assert "(continuous)" in text  # the run report lists the continuous phase
    finally:
        if proc.poll() is None or _alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
