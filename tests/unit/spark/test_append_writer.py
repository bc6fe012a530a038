"""append_writer: one file per partition, or Delta's optimized write when unpartitioned."""

from __future__ import annotations

from pyspark.sql import functions as F

from lakehouse.spark.delta import append_writer, last_operation_metrics


def _rows(spark):
    # 8 input partitions over 3 days: a plain append would write up to 8 files
    return spark.range(0, 240, numPartitions=8).withColumn("d", (F.col("id") % 3).cast("int"))


def test_an_unpartitioned_append_writes_one_file_not_one_per_task(spark, tmp_path):
    path = str(tmp_path / "plain")
    plain = str(tmp_path / "without")
    _rows(spark).write.format("delta").mode("append").save(plain)
    assert int(last_operation_metrics(spark, plain)["numFiles"]) == 8  # what it saves
    append_writer(_rows(spark)).save(path)
    assert int(last_operation_metrics(spark, path)["numFiles"]) == 1
    assert spark.read.format("delta").load(path).count() == 240


def test_a_partitioned_append_writes_one_file_per_partition(spark, tmp_path):
    path = str(tmp_path / "parts")
    append_writer(_rows(spark), partition_by=["d"]).save(path)
    metrics = last_operation_metrics(spark, path)
    assert int(metrics["numFiles"]) == 3
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    assert detail is not None and list(detail["partitionColumns"]) == ["d"]
