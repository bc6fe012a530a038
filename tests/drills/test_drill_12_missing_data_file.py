"""Drill 12: a live data file deleted behind Delta's back is found, named and repaired.

A deleted live parquet file made downstream jobs fail with ``FILE_NOT_EXIST`` while
``maintain`` reported ok (issue 29). The drill builds a partitioned table in two commits,
deletes one file the second commit added, and runs ``lakehouse check`` on it.

Pass criteria: reading the table fails (the fault is real); ``run_check`` exits 1, names
the table, the missing file and a ``RESTORE TABLE ... TO VERSION AS OF 0`` fix; after
running that fix the check exits 0 and the table reads the first commit's rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from lakehouse.cli.check import run_check
from lakehouse.config import Settings

SCHEMA = "order_id long, order_date string"


def test_missing_data_file_is_found_and_repaired(
    spark: SparkSession, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    path = settings.table_path("orders")
    first = [(i, f"2026-01-0{1 + i % 2}") for i in range(4)]
    second = [(i, f"2026-01-0{3 + i % 2}") for i in range(4, 8)]
    spark.createDataFrame(first, SCHEMA).write.format("delta").partitionBy("order_date").save(path)
    spark.createDataFrame(second, SCHEMA).write.format("delta").mode("append").save(path)
    v0 = set(spark.read.format("delta").option("versionAsOf", 0).load(path).inputFiles())
    live = set(spark.read.format("delta").load(path).inputFiles())
    lost = sorted(live - v0)[0]
    Path(urlparse(lost).path).unlink()
    with pytest.raises((PySparkException, Py4JError), match=r"FILE_NOT_EXIST|does not exist"):
        spark.read.format("delta").load(path).collect()

    assert run_check(settings, ["orders"], spark=spark) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"orders: 1 of {len(live)} live files of v1 are missing ({path}); ")
    assert f"    missing: {lost}\n" in out
    fix = re.search(r"RESTORE TABLE delta\.`[^`]+` TO VERSION AS OF \d+", out)
    assert fix is not None and fix.group(0).endswith("TO VERSION AS OF 0"), out

    spark.sql(fix.group(0))
    assert run_check(settings, ["orders"], spark=spark) == 0
    assert capsys.readouterr().out == f"orders: ok (v2, {len(v0)} live files)\n"
    assert sorted(r.order_id for r in spark.read.format("delta").load(path).collect()) == [
        0,
        1,
        2,
        3,
    ]
