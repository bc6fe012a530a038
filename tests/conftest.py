"""The one session-scoped SparkSession for the whole suite (Delta on, local[2], tiny shuffles)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import Settings, load_config
from lakehouse.spark.session import build_spark_session

REPO = Path(__file__).resolve().parents[1]

TEST_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.databricks.delta.properties.defaults.checkpointInterval": "1000",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
    "spark.driver.memory": "2g",
    "spark.sql.warehouse.dir": str(REPO / ".pytest_cache" / "spark-warehouse"),
}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    settings = load_config("local", conf_dir=REPO / "conf")
    session = build_spark_session(settings, app_name="lakehouse-tests", extra_conf=TEST_SPARK_CONF)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder (conf/, scripts/, spark-submit.sh)."""
    return REPO


@pytest.fixture()
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """Local settings whose data root is this test's tmp_path."""
    return load_config(
        "local",
        conf_dir=REPO / "conf",
        overrides={"paths": {"data_root": str(tmp_path / "data")}, "generator": {"orders": 300}},
    )
