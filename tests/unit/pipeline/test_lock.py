"""The data root's run lock: one run at a time, a lease that a dead run cannot hold forever."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lakehouse.pipeline.lock import RunLock, RunLockedError, read_lock


def test_a_second_run_is_refused_naming_the_first(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "_run.lock")
    with RunLock(spark, path, "batch-A", lease_s=60):
        held = read_lock(spark, path)
        assert held is not None and held["batch_id"] == "batch-A"
        with pytest.raises(RunLockedError, match=r"locked by run 'batch-A' \(.+:\d+\) until"):
            RunLock(spark, path, "batch-B").acquire()
    assert read_lock(spark, path) is None  # released
    with RunLock(spark, path, "batch-B"):
        assert read_lock(spark, path)["batch_id"] == "batch-B"


def test_an_expired_lease_is_broken_and_a_live_one_renewed(spark, tmp_path: Path) -> None:
    path = tmp_path / "_run.lock"
    # a run that died: its lock file stays, with a lease that ran out
    path.write_text(json.dumps({"batch_id": "dead", "owner": "h:1", "expires_at": time.time() - 1}))
    lock = RunLock(spark, str(path), "alive", lease_s=1.5).acquire()
    try:
        first = json.loads(path.read_text())["expires_at"]
        time.sleep(1.2)  # the renewal thread runs every lease / 3
        assert json.loads(path.read_text())["expires_at"] > first
        with pytest.raises(RunLockedError, match="'alive'"):
            RunLock(spark, str(path), "other").acquire()
    finally:
        lock.release()
    assert not path.exists()
