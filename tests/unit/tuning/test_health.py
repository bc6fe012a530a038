"""check_table: live files the Delta log names must exist; missing ones are named with fixes."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from lakehouse.tuning.health import check_table


def _table(spark: SparkSession, path: Path) -> None:
    spark.range(0, 4).repartition(2).write.format("delta").save(str(path))  # v0
    spark.range(4, 8).repartition(2).write.format("delta").mode("append").save(str(path))  # v1


def _local(uri: str) -> Path:
    return Path(urlparse(uri).path)


def test_whole_table_is_healthy(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "t"
    _table(spark, path)
    health = check_table(spark, str(path), table="t")
    assert health.healthy and health.missing == () and health.error == ""
    assert health.describe() == "t: ok (v1, 4 live files)"


def test_missing_file_is_named_with_a_restore_that_works(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "t"
    _table(spark, path)
    v0 = set(spark.read.format("delta").option("versionAsOf", 0).load(str(path)).inputFiles())
    added = sorted(set(spark.read.format("delta").load(str(path)).inputFiles()) - v0)
    _local(added[0]).unlink()

    health = check_table(spark, str(path), table="t")
    assert not health.healthy
    assert health.missing == (added[0],)
    assert health.restore_to == 0
    ident = f"delta.`{path}`"
    assert health.describe() == "\n".join(
        [
            f"t: 1 of 4 live files of v1 are missing ({path}); readers fail with FILE_NOT_EXIST:",
            f"    missing: {added[0]}",
            "  fix: put the missing files back (from a backup or the store's versioning)",
            f"  fix: RESTORE TABLE {ident} TO VERSION AS OF 0 (the newest version whose files "
            "all exist; commits v1..v1 are undone: re-run their jobs)",
            f"  fix: FSCK REPAIR TABLE {ident} where available (Databricks; open-source Delta "
            "has no FSCK): drops the missing files from the log, their rows are lost",
        ]
    )
    spark.sql(f"RESTORE TABLE {ident} TO VERSION AS OF {health.restore_to}")
    assert check_table(spark, str(path)).healthy
    assert sorted(r.id for r in spark.read.format("delta").load(str(path)).collect()) == [
        0,
        1,
        2,
        3,
    ]


def test_no_restore_target_when_the_first_version_lost_a_file(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "t"
    _table(spark, path)
    v0 = sorted(spark.read.format("delta").option("versionAsOf", 0).load(str(path)).inputFiles())
    _local(v0[0]).unlink()
    health = check_table(spark, str(path), table="t")
    assert health.missing == (v0[0],) and health.restore_to is None
    assert not any("RESTORE" in f for f in health.fixes)


def test_a_folder_that_is_not_a_table_or_a_damaged_log_is_reported(
    spark: SparkSession, tmp_path: Path
) -> None:
    assert check_table(spark, str(tmp_path / "none")).error == "no Delta table there"
    path = tmp_path / "t"
    _table(spark, path)
    (path / "_delta_log" / "00000000000000000001.json").write_text("{not json\n")
    health = check_table(spark, str(path), table="t")
    assert not health.healthy
    assert health.error.startswith("the Delta log cannot be read: ")
    assert health.describe().startswith(f"t: cannot check {path}: the Delta log cannot be read: ")
