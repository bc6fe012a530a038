"""The one place a SparkSession is built, from validated configuration.

Nothing in this package creates a session at import time: entry points and the test
fixture call :func:`build_spark_session` and pass the session down.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakehouse.config import Settings

__all__ = [
    "LOCAL_BIND_CONF",
    "REDACTION_REGEX",
    "S3_DYNAMODB_LOG_STORE",
    "build_spark_session",
    "cache_dir",
    "delta_maven_coordinate",
    "hadoop_aws_coordinate",
    "restored_conf",
    "s3_log_store_conf",
    "s3a_conf",
    "session_conf",
    "spark_conf_for",
    "spark_packages",
    "uses_s3a",
]

#: Spark redacts configuration values whose *key* matches this in the UI, logs and event log.
REDACTION_REGEX = (
    r"(?i)secret|password|passwd|token|credential|access[._-]?key|session[._-]?key|auth"
)

#: Where a ``local[...]`` driver listens and what it advertises: the loopback interface.
LOCAL_BIND_CONF = {
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def cache_dir() -> Path:
    """Persistent cache for downloaded jars and tools: ``$LAKEHOUSE_CACHE`` or ~/.cache/lakehouse."""
    return Path(os.environ.get("LAKEHOUSE_CACHE", Path.home() / ".cache" / "lakehouse"))


def delta_maven_coordinate() -> str:
    """Maven coordinates of the Delta jars matching the installed pyspark and delta-spark.

    Delta 4.x publishes one artifact per Spark minor (``delta-spark_4.1_2.13``);
    Delta 3.x publishes ``delta-spark_2.12`` for Spark 3.5.
    """
    import pyspark

    delta_version = metadata.version("delta-spark")
    spark_mm = ".".join(pyspark.__version__.split(".")[:2])
    if int(delta_version.split(".")[0]) >= 4:
        return f"io.delta:delta-spark_{spark_mm}_2.13:{delta_version}"
    return f"io.delta:delta-spark_2.12:{delta_version}"


def hadoop_aws_coordinate() -> str:
    """Maven coordinates of ``hadoop-aws`` at the version of the Hadoop client bundled
    with the installed pyspark (the S3A connector must match it exactly).

    >>> hadoop_aws_coordinate().startswith("org.apache.hadoop:hadoop-aws:3.")
    True
    """
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    found = sorted(p.name for p in jars.glob("hadoop-client-api-*.jar"))
    if len(found) != 1:
        raise RuntimeError(
            f"{jars}: expected one hadoop-client-api-<version>.jar to derive hadoop-aws's "
            f"version from, found {found or 'none'}; set spark.s3a.package explicitly"
        )
    version = found[0].removeprefix("hadoop-client-api-").removesuffix(".jar")
    return f"org.apache.hadoop:hadoop-aws:{version}"


def uses_s3a(settings: Settings) -> bool:
    """Whether the data root, the landing path or a table lives on ``s3a://``."""
    paths = [settings.paths.data_root, settings.landing_path]
    paths += [settings.table_path(name) for name in settings.tables]
    return any(p.startswith("s3a://") for p in paths)


def spark_packages(settings: Settings) -> list[str]:
    """The Maven packages Spark resolves for these settings (``spark.jars.packages``):
    Delta's jars (``spark.delta_package``) and, when a path is ``s3a://``, hadoop-aws
    (``spark.s3a.package``). Each is left out where it is null (the platform has it).

    >>> from lakehouse.config import load_config
    >>> def artifacts(settings):
    ...     return [p.split(":")[1].split("_")[0] for p in spark_packages(settings)]
    >>> artifacts(load_config("local"))
    ['delta-spark']
    >>> artifacts(load_config("local", overrides={"paths": {"data_root": "s3a://lake/x"}}))
    ['delta-spark', 'hadoop-aws']
    """
    packages = []
    delta = settings.spark.delta_package
    if delta:
        packages.append(delta_maven_coordinate() if delta == "auto" else delta)
    aws = settings.spark.s3a.package
    if aws and uses_s3a(settings):
        packages.append(hadoop_aws_coordinate() if aws == "auto" else aws)
    return packages


def s3a_conf(settings: Settings) -> dict[str, str]:
    """Hadoop settings for the S3A connector from ``spark.s3a`` (endpoint, path-style
    access, region); none for AWS's own endpoints. Credentials are not among them: S3A
    reads them from the environment or the instance role.

    >>> from lakehouse.config import load_config
    >>> s3a_conf(load_config("local"))
    {}
    >>> s3 = {"endpoint": "http://127.0.0.1:9000", "path_style_access": True}
    >>> conf = s3a_conf(load_config("local", overrides={"spark": {"s3a": s3}}))
    >>> for key in sorted(conf):
    ...     print(key, conf[key])
    spark.hadoop.fs.s3a.connection.ssl.enabled false
    spark.hadoop.fs.s3a.endpoint http://127.0.0.1:9000
    spark.hadoop.fs.s3a.path.style.access true
    """
    s3a = settings.spark.s3a
    conf: dict[str, str] = {}
    if s3a.endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = s3a.endpoint
        ssl = not s3a.endpoint.startswith("http://")
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(ssl).lower()
    if s3a.path_style_access:
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
    if s3a.region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = s3a.region
    return conf


#: Delta's DynamoDB-backed S3 log store (jar ``io.delta:delta-storage-s3-dynamodb``).
S3_DYNAMODB_LOG_STORE = "io.delta.storage.S3DynamoDBLogStore"


def s3_log_store_conf(settings: Settings) -> dict[str, str]:
    """Spark confs that make Delta commit through the DynamoDB log store on ``s3a://`` and
    ``s3://`` paths, when ``spark.s3_log_store.dynamodb_table`` is set; else none.

    Examples
    --------
    >>> from lakehouse.config import load_config
    >>> s3_log_store_conf(load_config("local"))
    {}
    >>> store = {"dynamodb_table": "lake-delta-log", "region": "eu-west-1"}
    >>> conf = s3_log_store_conf(load_config("local", overrides={"spark": {"s3_log_store": store}}))
    >>> conf["spark.delta.logStore.s3a.impl"], conf[f"spark.{S3_DYNAMODB_LOG_STORE}.ddb.tableName"]
    ('io.delta.storage.S3DynamoDBLogStore', 'lake-delta-log')
    """
    store = settings.spark.s3_log_store
    if not store.dynamodb_table:
        return {}
    prefix = f"spark.{S3_DYNAMODB_LOG_STORE}"
    return {
        "spark.delta.logStore.s3a.impl": S3_DYNAMODB_LOG_STORE,
        "spark.delta.logStore.s3.impl": S3_DYNAMODB_LOG_STORE,
        f"{prefix}.ddb.tableName": store.dynamodb_table,
        f"{prefix}.ddb.region": store.region,
    }


def spark_conf_for(
    settings: Settings, *, extra_conf: Mapping[str, str] | None = None, submitted: bool = False
) -> dict[str, str]:
    """The Spark configuration the session gets, without building it.

    ``submitted`` is true when the JVM was started by ``spark-submit`` (which already
    received master, packages and Delta settings). With a ``local[...]`` master the driver
    binds to and advertises 127.0.0.1 (:data:`LOCAL_BIND_CONF`) unless the configuration
    sets those keys itself.
    """
    conf: dict[str, str] = {"spark.app.name": settings.spark.app_name}
    conf.update(DELTA_CONF)
    conf["spark.redaction.regex"] = REDACTION_REGEX
    conf["spark.sql.redaction.string.regex"] = REDACTION_REGEX
    if not submitted:
        if settings.spark.master:
            conf["spark.master"] = settings.spark.master
        packages = spark_packages(settings)
        if packages:
            conf["spark.jars.packages"] = ",".join(packages)
            conf["spark.jars.ivy"] = settings.spark.ivy_dir or str(cache_dir() / "ivy")
    conf.update(s3a_conf(settings))
    conf.update(s3_log_store_conf(settings))
    conf.update(settings.spark.conf)
    if extra_conf:
        conf.update(extra_conf)
    if conf.get("spark.master", "").startswith("local"):
        # Local Spark listens on the loopback interface only: without this the driver binds
        # to the machine's first external interface (unless SPARK_LOCAL_IP is set) and its
        # block manager and RPC ports are open to the network. A key set in configuration
        # explicitly (e.g. to reach the driver from a container) is kept.
        for key, value in LOCAL_BIND_CONF.items():
            conf.setdefault(key, value)
    return conf


def build_spark_session(
    settings: Settings,
    *,
    app_name: str | None = None,
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Build (or return the running) SparkSession for ``settings``.

    Delta's SQL extension and catalog are always on. Outside ``spark-submit`` the master
    and the jars of :func:`spark_packages` (resolved from Maven Central into a persistent Ivy cache, so a second
    run is offline) come from configuration; under ``spark-submit`` they come from the
    command line, and are not overridden here.
    """
    from pyspark.sql import SparkSession

    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    conf = spark_conf_for(settings, extra_conf=extra_conf, submitted=submitted)
    if app_name:
        conf["spark.app.name"] = app_name
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@contextmanager
def session_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """Set runtime SQL settings for the duration of a block, then put back what was there.

    The session's configuration is shared by every thread using the session, so queries
    another thread starts inside the block see these settings too.
    """
    with restored_conf(spark, conf):
        for key, value in conf.items():
            spark.conf.set(key, value)
        yield


@contextmanager
def restored_conf(spark: SparkSession, keys: Iterable[str]) -> Iterator[None]:
    """Put ``keys`` back as they were before the block (unset if they were unset), whatever
    the block set them to, also on error."""
    before = {k: spark.conf.get(k, None) for k in keys}
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)
