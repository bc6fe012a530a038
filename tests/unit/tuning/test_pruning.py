"""Partition pruning measured from the executed plan's scan metrics and the Delta log."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType

from lakehouse.tuning.pruning import (
    PartitionPruningError,
    PartitionRange,
    check_pruning,
    dynamic_pruning_filters,
    files_in_range,
    read_partitions,
    read_report,
    scan_stats,
)

START = dt.date(2025, 1, 1)
DAYS = 10


@pytest.fixture(scope="module")
def fact(spark, tmp_path_factory) -> str:
    """10 daily partitions, 2 rows each, one file per partition."""
    path = str(tmp_path_factory.mktemp("pruning") / "fact")
    rows = [(i, START + dt.timedelta(days=i % DAYS), float(i)) for i in range(2 * DAYS)]
    df = spark.createDataFrame(rows, "id long, d date, amount double")
    df.repartition(1).write.format("delta").partitionBy("d").save(path)
    return path


def test_range_reads_exactly_k_of_n_partitions(spark, fact):
    rng = PartitionRange.days("d", dt.date(2025, 1, 3), 3)
    df = read_partitions(spark, fact, rng)
    stats = scan_stats(df, path=fact)
    assert (stats.partitions_read, stats.partitions_total) == (3, DAYS)
    assert (stats.files_read, stats.files_total) == (3, DAYS)
    expected = spark.createDataFrame(
        [(i, START + dt.timedelta(days=i % DAYS), float(i)) for i in (2, 3, 4, 12, 13, 14)],
        "id long, d date, amount double",
    )
    assert_df_equality(df, expected, ignore_row_order=True, ignore_nullable=True)
    report = stats.as_report()
    assert {k: report[k] for k in ("files_read", "files_total")} == {
        "files_read": 3,
        "files_total": DAYS,
    }


def test_function_on_partition_column_still_prunes(spark, fact):
    df = (
        spark.read.format("delta")
        .load(fact)
        .where(F.date_format("d", "yyyy-MM-dd").between("2025-01-01", "2025-01-02"))
    )
    assert scan_stats(df).partitions_read == 2


def test_read_partitions_rejects_non_partition_column(spark, fact):
    with pytest.raises(
        ValueError, match=r"'amount' is not a partition column; partition columns: \['d'\]"
    ):
        read_partitions(spark, fact, PartitionRange("amount", 1, 2))


def test_udf_filter_trips_the_guard(spark, fact):
    is_early = F.udf(lambda d: d <= dt.date(2025, 1, 2), BooleanType())
    spark.udf.register("is_early", is_early)
    df = spark.read.format("delta").load(fact).where(F.expr("is_early(d)"))
    rng = PartitionRange("d", dt.date(2025, 1, 1), dt.date(2025, 1, 2))
    with pytest.raises(PartitionPruningError) as err:
        check_pruning(df, table="fact_sales", path=fact, declared=rng, policy="fail")
    assert str(err.value) == (
        "partition guard: table 'fact_sales' declares d BETWEEN '2025-01-01' AND '2025-01-02' "
        "(2 partitions) but the query read 10 of 10 partitions; filter is_early(d) does not "
        "prune (compare the bare partition column 'd': no UDF, no OR with data columns)"
    )


def test_guard_warns_instead_of_failing(spark, fact, caplog):
    df = (
        spark.read.format("delta")
        .load(fact)
        .where((F.col("d") <= "2025-01-02") | (F.col("id") > 100))
    )
    rng = PartitionRange("d", dt.date(2025, 1, 1), dt.date(2025, 1, 2))
    with caplog.at_level(logging.WARNING, logger="lakehouse.tuning.pruning"):
        stats = check_pruning(df, table="t", path=fact, declared=rng, policy="warn")
    assert stats.partitions_read == DAYS
    assert "partition guard: table 't'" in caplog.text


def test_guard_passes_a_pruned_query(spark, fact):
    rng = PartitionRange("d", dt.date(2025, 1, 1), dt.date(2025, 1, 2))
    stats = check_pruning(
        read_partitions(spark, fact, rng), table="t", path=fact, declared=rng, policy="fail"
    )
    assert stats.partitions_read == 2


def test_dynamic_partition_pruning_in_executed_plan(spark, fact, tmp_path):
    dim_path = str(tmp_path / "dim_date")
    spark.createDataFrame(
        [(START + dt.timedelta(days=i), i // 5) for i in range(DAYS)], "d date, week int"
    ).write.format("delta").save(dim_path)
    dim = spark.read.format("delta").load(dim_path).where(F.col("week") == 1)
    joined = spark.read.format("delta").load(fact).join(dim, "d")
    filters = dynamic_pruning_filters(joined)
    assert len(filters) == 1
    assert "dynamicpruning" in filters[0]
    # and it really pruned: the fact scan read only the 5 days of week 1
    assert scan_stats(joined, path=fact).partitions_read == 5


def test_read_report_is_the_job_reads_entry(spark, fact):
    rng = PartitionRange.days("d", START, 2)
    report = read_report(read_partitions(spark, fact, rng), path=fact)
    assert {
        k: report[k] for k in ("files_read", "files_total", "partitions_read", "partitions_total")
    } == {
        "files_read": 2,
        "files_total": DAYS,
        "partitions_read": 2,
        "partitions_total": DAYS,
    }


@pytest.fixture(scope="module")
def clustered(spark, tmp_path_factory) -> str:
    """Unpartitioned: 5 files of 2 consecutive days each (as liquid clustering lays them out)."""
    path = str(tmp_path_factory.mktemp("skipping") / "fact")
    for first in range(0, DAYS, 2):
        rows = [(i, START + dt.timedelta(days=first + i % 2), float(i)) for i in range(4)]
        df = spark.createDataFrame(rows, "id long, d date, amount double")
        df.repartition(1).write.format("delta").mode("append").save(path)
    return path


def test_unpartitioned_range_reads_only_the_overlapping_files(spark, clustered):
    rng = PartitionRange("d", dt.date(2025, 1, 3), dt.date(2025, 1, 5))  # days 2-4: files 2, 3
    assert files_in_range(spark, clustered, rng) == 2
    df = read_partitions(spark, clustered, rng)
    stats = check_pruning(df, table="t", path=clustered, declared=rng, policy="fail")
    assert (stats.files_read, stats.files_total, stats.partitions_total) == (2, 5, 0)
    assert df.count() == 6


def test_a_filter_that_does_not_skip_trips_the_guard_on_an_unpartitioned_table(spark, clustered):
    rng = PartitionRange("d", dt.date(2025, 1, 1), dt.date(2025, 1, 2))
    is_early = F.udf(lambda d: d <= dt.date(2025, 1, 2), BooleanType())
    df = spark.read.format("delta").load(clustered).where(is_early("d"))
    with pytest.raises(PartitionPruningError) as err:
        check_pruning(df, table="fact_sales", path=clustered, declared=rng, policy="fail")
    assert str(err.value).startswith(
        "partition guard: table 'fact_sales' declares d BETWEEN '2025-01-01' AND '2025-01-02' "
        "(1 files whose min/max statistics overlap it) but the query read 5 of 5 files; filter "
    )


def test_read_partitions_names_a_missing_column_of_an_unpartitioned_table(spark, clustered):
    with pytest.raises(ValueError, match=r"no column 'day'; columns: \['id', 'd', 'amount'\]"):
        read_partitions(spark, clustered, PartitionRange("day", 1, 2))
