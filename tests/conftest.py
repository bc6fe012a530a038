"""The one session-scoped SparkSession for the whole suite (Delta on, local[2], tiny shuffles)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
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
    "spark.driver.memory": "4g",
    # Compiling whole-stage code for every tiny query costs more than it saves here (about
    # 10% of the unit tests' time). The tests that start `lakehouse run` processes (tutorial,
    # continuous mode, the crash and concurrency drills) run the real settings, codegen on.
    "spark.sql.codegen.wholeStage": "false",
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
def restore_test_conf(spark: SparkSession) -> Callable[[], None]:
    """For tests that run `lakehouse` commands in-process: those build their session from
    the real configuration, and ``getOrCreate`` applies its SQL settings to the shared test
    session (8 shuffle partitions instead of 2, ...). Call the returned function afterwards
    to put the test session's own settings back."""

    def restore() -> None:
        for key, value in TEST_SPARK_CONF.items():
            if spark.conf.get(key, None) != value and spark.conf.isModifiable(key):
                spark.conf.set(key, value)

    return restore


@pytest.fixture(autouse=True, scope="module")
def _release_cached_tables() -> Iterator[None]:
    """After each test module, drop what the shared session keeps cached for tables that
    module created: Delta caches every table's state it reads (a persisted RDD per
    snapshot, kept by DeltaLog's cache), so over the whole suite those pile up and squeeze
    execution memory until a sort fails with UNABLE_TO_ACQUIRE_MEMORY."""
    yield
    session = SparkSession.getActiveSession()  # None when no test has started Spark yet
    if session is None:
        return
    jvm = session.sparkContext._jvm
    if jvm is not None:
        jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    session.catalog.clearCache()


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


@pytest.fixture(scope="module")
def aws_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 serving every AWS API the tests call (S3, EMR, EMR
    Serverless, EMR on EKS), with fake credentials and region in the environment while the
    module runs. Its URL is also ``AWS_ENDPOINT_URL``, so boto3 clients built without an
    endpoint reach it too."""
    from moto.server import ThreadedMotoServer

    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in (*keys, "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    # port 0: the OS picks a free port when the server binds (no probe-then-bind race)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
