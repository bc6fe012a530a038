"""Drill 8: VACUUM with a retention below the safety default is refused unless overridden.

Pass criterion: ``VACUUM ... RETAIN 0 HOURS`` raises Delta's retention-check error
(``spark.databricks.delta.retentionDurationCheck.enabled`` is on by default, safety
default 168 hours) and deletes no file; with the check explicitly disabled for that one
call the same VACUUM runs and removes the unreferenced files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


def _parquet(path: Path) -> set[str]:
    return {p.name for p in path.glob("*.parquet")}


def test_vacuum_below_safety_default_is_refused(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "t"
    spark.range(3).coalesce(1).write.format("delta").save(str(path))
    spark.range(3, 6).coalesce(1).write.format("delta").mode("overwrite").save(str(path))
    files_before = _parquet(path)
    assert len(files_before) == 2  # the overwritten file is still on disk (time travel)

    assert spark.conf.get(CHECK, "true") == "true"
    with pytest.raises(
        Exception, match=r"DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT|such a low retention period"
    ) as info:
        DeltaTable.forPath(spark, str(path)).vacuum(0.0)
    # Delta 4.x: "The specified VACUUM retention period is too low ..."; Delta 3.3 (EMR 7):
    # "Are you sure you would like to vacuum files with such a low retention period?"
    assert re.search(r"retention period is too low|such a low retention period", str(info.value))
    assert _parquet(path) == files_before

    spark.conf.set(CHECK, "false")  # the explicit override
    try:
        DeltaTable.forPath(spark, str(path)).vacuum(0.0)
    finally:
        spark.conf.unset(CHECK)
    assert len(_parquet(path)) == 1
    assert sorted(r.id for r in spark.read.format("delta").load(str(path)).collect()) == [3, 4, 5]
