"""The Spark configuration a session is built with (no extra session is started)."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import ConfigError, Settings, load_config
from lakehouse.spark.session import delta_maven_coordinate, hadoop_aws_coordinate, spark_conf_for

LOOPBACK = {"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"}


def _bind(conf: dict[str, str]) -> dict[str, str | None]:
    return {k: conf.get(k) for k in LOOPBACK}


def test_local_master_binds_to_loopback(settings: Settings) -> None:
    assert settings.spark.master == "local[2]"
    assert _bind(spark_conf_for(settings)) == LOOPBACK
    assert _bind(spark_conf_for(settings, extra_conf={"spark.master": "local[*]"})) == LOOPBACK


def test_cluster_masters_keep_their_own_addresses(settings: Settings) -> None:
    for master in ("spark://10.0.0.5:7077", "yarn", "k8s://https://api:443"):
        conf = spark_conf_for(settings, extra_conf={"spark.master": master})
        assert _bind(conf) == dict.fromkeys(LOOPBACK), master


def test_emr_without_master_is_left_alone() -> None:
    settings = load_config("emr", environ={"LAKEHOUSE_DATA_BUCKET": "b"})
    assert _bind(spark_conf_for(settings)) == dict.fromkeys(LOOPBACK)


def test_explicit_setting_wins(settings: Settings) -> None:
    conf = spark_conf_for(settings, extra_conf={"spark.driver.host": "driver.internal"})
    assert _bind(conf) == {
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "driver.internal",
    }


def test_the_test_session_listens_on_loopback(spark: SparkSession) -> None:
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.driver.host") == "127.0.0.1"


# --------------------------------------------------------------------- S3A (spark.s3a)

S3_ENV = {
    "LAKEHOUSE_DATA_ROOT": "s3a://lake/lakehouse",
    "LAKEHOUSE_S3_ENDPOINT": "http://127.0.0.1:9000",
    "LAKEHOUSE_S3_PATH_STYLE": "true",
    "LAKEHOUSE_S3_REGION": "eu-west-1",
}


def test_an_s3a_data_root_adds_hadoop_aws_and_the_endpoint_from_the_environment() -> None:
    conf = spark_conf_for(load_config("local", environ=S3_ENV))
    packages = conf["spark.jars.packages"].split(",")
    assert packages[0] == delta_maven_coordinate()
    assert packages[1] == hadoop_aws_coordinate()
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    # credentials are never part of the configuration
    assert not [k for k in conf if "key" in k.lower() and "s3a" in k]


def test_local_paths_get_neither_hadoop_aws_nor_s3a_settings(settings: Settings) -> None:
    conf = spark_conf_for(settings)
    assert conf["spark.jars.packages"] == delta_maven_coordinate()
    assert not [k for k in conf if "fs.s3a" in k]


def test_an_s3a_landing_path_alone_adds_hadoop_aws(settings: Settings) -> None:
    on_s3 = settings.model_copy(
        update={"paths": settings.paths.model_copy(update={"landing": "s3a://in/landing"})}
    )
    assert hadoop_aws_coordinate() in spark_conf_for(on_s3)["spark.jars.packages"]


def test_a_platform_with_hadoop_aws_gets_no_package() -> None:
    for env in ("emr", "kubernetes"):
        settings = load_config(env, environ={**S3_ENV, "LAKEHOUSE_DATA_BUCKET": "b"})
        assert settings.spark.s3a.package is None, env
        assert "spark.jars.packages" not in spark_conf_for(settings), env


def test_an_explicit_package_and_an_https_endpoint() -> None:
    s3a = {"package": "org.apache.hadoop:hadoop-aws:3.4.1", "endpoint": "https://s3.internal"}
    settings = load_config("local", environ=S3_ENV, overrides={"spark": {"s3a": s3a}})
    conf = spark_conf_for(settings)
    assert conf["spark.jars.packages"].endswith(",org.apache.hadoop:hadoop-aws:3.4.1")
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"


def test_s3a_settings_are_validated() -> None:
    bad = {"LAKEHOUSE_S3_ENDPOINT": "127.0.0.1:9000", "LAKEHOUSE_S3_PATH_STYLE": "yes"}
    with pytest.raises(ConfigError) as err:
        load_config("local", environ={**S3_ENV, **bad})
    assert "spark.s3a.endpoint" in str(err.value)
    assert "spark.s3a.path_style_access" in str(err.value)
