"""Named adaptive-query-execution (AQE) profiles mapped onto Spark's runtime SQL settings.

A profile (``aqe_profiles:`` in ``conf/base.yaml``, validated by
:class:`lakehouse.config.AqeProfile`) only names what it changes; everything else keeps
Spark's default, so the ``default`` profile is empty. The job context
(:func:`lakehouse.pipeline.job_context`) applies a job's profile with :func:`profile_applied`
for the length of the job and records :func:`aqe_details` in ``JobResult.details["aqe"]``.

Examples
--------
>>> from lakehouse.config import AqeProfile
>>> conf = aqe_conf(AqeProfile(parallelism_first=False, advisory_partition_size="64m"))
>>> conf["spark.sql.adaptive.coalescePartitions.parallelismFirst"]
'false'
>>> conf["spark.sql.adaptive.advisoryPartitionSizeInBytes"]
'64m'
>>> aqe_conf(AqeProfile())
{}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lakehouse.config import AqeProfile
from lakehouse.spark.session import restored_conf
from lakehouse.tuning.pruning import iter_plan_nodes

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "AQE_KEYS",
    "apply_profile",
    "aqe_conf",
    "aqe_details",
    "profile_applied",
    "shuffle_reads",
]

#: Profile field -> Spark runtime SQL setting.
AQE_KEYS: dict[str, str] = {
    "enabled": "spark.sql.adaptive.enabled",
    "coalesce_partitions": "spark.sql.adaptive.coalescePartitions.enabled",
    "parallelism_first": "spark.sql.adaptive.coalescePartitions.parallelismFirst",
    "advisory_partition_size": "spark.sql.adaptive.advisoryPartitionSizeInBytes",
    "min_partition_size": "spark.sql.adaptive.coalescePartitions.minPartitionSize",
    "initial_partitions": "spark.sql.adaptive.coalescePartitions.initialPartitionNum",
    "skew_join": "spark.sql.adaptive.skewJoin.enabled",
    "skewed_partition_factor": "spark.sql.adaptive.skewJoin.skewedPartitionFactor",
    "skewed_partition_threshold": "spark.sql.adaptive.skewJoin.skewedPartitionThresholdInBytes",
    "local_shuffle_reader": "spark.sql.adaptive.localShuffleReader.enabled",
    "auto_broadcast_threshold": "spark.sql.adaptive.autoBroadcastJoinThreshold",
}


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def aqe_conf(profile: AqeProfile) -> dict[str, str]:
    """The Spark settings ``profile`` sets (only the ones it names), as strings.

    Parameters
    ----------
    profile:
        A validated profile.

    Returns
    -------
    dict[str, str]
        ``spark.sql.adaptive.*`` (and the profile's ``extra``) keys to values.

    Examples
    --------
    >>> from lakehouse.config import AqeProfile
    >>> aqe_conf(AqeProfile(skew_join=True, skewed_partition_factor=3))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'spark.sql.adaptive.skewJoin.enabled': 'true',
     'spark.sql.adaptive.skewJoin.skewedPartitionFactor': '3.0'}
    """
    conf: dict[str, str] = {}
    for field_name, key in AQE_KEYS.items():
        value = getattr(profile, field_name)
        if value is not None:
            conf[key] = _render(float(value) if field_name == "skewed_partition_factor" else value)
    conf.update(profile.extra)
    return conf


def _launch_value(spark: SparkSession, key: str) -> str | None:
    """The value ``key`` had when the session was built (SparkConf), if any."""
    launch = spark.sparkContext.getConf()
    return launch.get(key) if launch.contains(key) else None


def apply_profile(spark: SparkSession, profile: AqeProfile) -> dict[str, str]:
    """Set ``profile`` on the session's runtime SQL configuration.

    Every managed ``spark.sql.adaptive.*`` key the profile does not name goes back to the
    value the session was launched with (or Spark's default), so switching profiles in one
    session never leaks settings from the previous one.

    Returns
    -------
    dict[str, str]
        The settings the profile applied (:func:`aqe_conf`).
    """
    conf = aqe_conf(profile)
    for key in AQE_KEYS.values():
        if key in conf:
            continue
        launched = _launch_value(spark, key)
        if launched is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, launched)
    for key, value in conf.items():
        spark.conf.set(key, value)
    return conf


@contextmanager
def profile_applied(spark: SparkSession, profile: AqeProfile) -> Iterator[dict[str, str]]:
    """Apply ``profile`` for the duration of a block, then restore the previous values."""
    with restored_conf(spark, set(AQE_KEYS.values()) | set(profile.extra)):
        yield apply_profile(spark, profile)


def aqe_details(name: str, profile: AqeProfile) -> dict[str, Any]:
    """What goes into ``JobResult.details["aqe"]``: the profile name and its settings.

    Examples
    --------
    >>> from lakehouse.config import AqeProfile
    >>> aqe_details("default", AqeProfile())
    {'profile': 'default', 'settings': {}}
    """
    return {"profile": name, "settings": aqe_conf(profile)}


def shuffle_reads(plan: Any) -> list[dict[str, Any]]:
    """Describe every ``AQEShuffleReadExec`` in an executed plan (a py4j ``SparkPlan``).

    Each entry has ``description`` (``"skewed"``, ``"coalesced"``, ``"local"``, ...),
    ``partitions`` (after the read) and ``skewed`` / ``coalesced`` flags. Use
    :func:`lakehouse.tuning.pruning.executed_plan` to get the plan of a DataFrame.
    """
    reads = []
    for node in iter_plan_nodes(plan):
        if node.getClass().getSimpleName() != "AQEShuffleReadExec":
            continue
        reads.append(
            {
                "description": _read_description(node),
                "partitions": int(node.partitionSpecs().length()),
                "skewed": bool(node.hasSkewedPartition()),
                "coalesced": bool(node.hasCoalescedPartition()),
            }
        )
    return reads


def _read_description(node: Any) -> str:
    # simpleString is "AQEShuffleRead <flags>" (e.g. "AQEShuffleRead skewed").
    text = str(node.simpleString(25))
    return text.partition(" ")[2].strip()
