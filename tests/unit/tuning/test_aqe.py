"""AQE profiles: config validation, the Spark settings they map to, and that they fire."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from lakehouse.config import AqeProfile, ConfigError, load_config
from lakehouse.tuning.aqe import (
    apply_profile,
    aqe_conf,
    profile_applied,
    shuffle_reads,
)
from lakehouse.tuning.pruning import executed_plan


def test_default_profile_is_empty(settings):
    assert aqe_conf(settings.aqe_profiles["default"]) == {}


def test_profiles_map_to_spark_settings(settings):
    assert aqe_conf(settings.aqe_profiles["many-small-files"]) == {
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.parallelismFirst": "false",
        "spark.sql.adaptive.advisoryPartitionSizeInBytes": "64m",
        "spark.sql.adaptive.coalescePartitions.minPartitionSize": "1m",
        "spark.sql.adaptive.autoBroadcastJoinThreshold": "32m",
    }
    assert aqe_conf(settings.aqe_profiles["skewed-joins"]) == {
        "spark.sql.adaptive.advisoryPartitionSizeInBytes": "32m",
        "spark.sql.adaptive.skewJoin.enabled": "true",
        "spark.sql.adaptive.skewJoin.skewedPartitionFactor": "3.0",
        "spark.sql.adaptive.skewJoin.skewedPartitionThresholdInBytes": "64m",
        "spark.sql.adaptive.localShuffleReader.enabled": "true",
    }


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (
            {"advisory_partition_size": "64 megs"},
            "<overrides>: aqe_profiles.bad.advisory_partition_size: not a Spark size string "
            "(digits and an optional unit b/k/m/g/t/p): '64 megs'; found '64 megs'",
        ),
        (
            {"skewed_partition_threshold": "0"},
            "<overrides>: aqe_profiles.bad.skewed_partition_threshold: must be a positive size "
            "(e.g. 64m); found '0'",
        ),
        (
            {"skewed_partition_factor": 0.5},
            "<overrides>: aqe_profiles.bad.skewed_partition_factor: Input should be greater "
            "than 1; found 0.5",
        ),
        (
            {"skew_joins": True},
            "<overrides>: aqe_profiles.bad.skew_joins: unknown key 'skew_joins' under "
            "aqe_profiles.bad",
        ),
        (
            {"min_partition_size": "128m", "advisory_partition_size": "64m"},
            "<overrides>: aqe_profiles.bad: min_partition_size (128m) must not exceed "
            "advisory_partition_size (64m); found",
        ),
        (
            {"extra": {"spark.executor.memory": "4g"}},
            "<overrides>: aqe_profiles.bad.extra: keys must be runtime SQL settings starting "
            "with 'spark.sql.': ['spark.executor.memory']; found",
        ),
    ],
)
def test_invalid_profiles_are_rejected(profile, message):
    with pytest.raises(ConfigError) as err:
        load_config("local", overrides={"aqe_profiles": {"bad": profile}})
    assert message in str(err.value)


def test_apply_profile_resets_keys_of_the_previous_profile(spark, settings):
    key = "spark.sql.adaptive.coalescePartitions.parallelismFirst"
    with profile_applied(spark, settings.aqe_profiles["many-small-files"]):
        assert spark.conf.get(key) == "false"
        apply_profile(spark, settings.aqe_profiles["default"])
        assert spark.conf.get(key) == "true"  # Spark's default again
    assert spark.conf.get(key) == "true"


def test_skewed_joins_profile_splits_the_skewed_partition(spark, settings):
    # The configured profile, with its byte thresholds scaled down to this tiny data.
    profile = settings.aqe_profiles["skewed-joins"].model_copy(
        update={"skewed_partition_threshold": "1k", "advisory_partition_size": "1k"}
    )
    big = spark.range(0, 20_000, 1, 4).withColumn(
        "k", F.when(F.col("id") < 15_000, F.lit(0)).otherwise(F.col("id") % 50)
    )
    small = spark.range(0, 50, 1, 2).withColumnRenamed("id", "k")
    saved = {
        k: spark.conf.get(k)
        for k in ("spark.sql.shuffle.partitions", "spark.sql.autoBroadcastJoinThreshold")
    }
    spark.conf.set("spark.sql.shuffle.partitions", "10")
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")  # force a sort-merge join
    try:
        with profile_applied(spark, profile):
            reads = shuffle_reads(executed_plan(big.join(small, "k")))
        with profile_applied(spark, AqeProfile(skew_join=False)):
            reads_off = shuffle_reads(executed_plan(big.join(small, "k")))
    finally:
        for k, v in saved.items():
            spark.conf.set(k, v)
    assert [r["skewed"] for r in reads].count(True) == 1
    assert any("skewed" in r["description"] for r in reads)
    assert not any(r["skewed"] for r in reads_off)


def test_many_small_files_profile_coalesces_200_partitions(spark, settings):
    df = spark.range(0, 1000, 1, 2).groupBy((F.col("id") % 100).alias("m")).count()
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "200")
    try:
        with profile_applied(spark, settings.aqe_profiles["many-small-files"]):
            reads = shuffle_reads(executed_plan(df))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", saved)
    assert len(reads) == 1
    assert reads[0]["coalesced"]
    assert reads[0]["description"] == "coalesced"
    assert reads[0]["partitions"] == 1  # 200 tiny partitions -> one of <= 64m
