"""The Spark configuration a session is built with (no extra session is started)."""

from __future__ import annotations

from pyspark.sql import SparkSession

from lakehouse.config import Settings, load_config
from lakehouse.spark.session import spark_conf_for

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
