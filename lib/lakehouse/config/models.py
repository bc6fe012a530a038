"""The typed, frozen configuration models (pydantic): what each YAML key may hold."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    field_validator,
    model_validator,
)

from lakehouse.config.cluster import ClusterSpec
from lakehouse.spark.sql import check_expression_text, validate_identifier

# --------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _ident(value: str) -> str:
    return validate_identifier(value)


Identifier = Annotated[str, AfterValidator(_ident)]

_MODULE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _module_path(value: str) -> str:
    if not _MODULE_PATH.fullmatch(value):
        raise ValueError("must be a dotted Python module path such as jobs.silver_orders")
    return value


ModulePath = Annotated[str, AfterValidator(_module_path)]


class S3LogStoreSettings(_Model):
    """Delta's DynamoDB-backed log store for ``s3a://`` / ``s3://`` tables
    (``io.delta.storage.S3DynamoDBLogStore``): safe commits from several writing clusters.
    Off while ``dynamodb_table`` is empty (Delta's default S3 log store: one writer)."""

    #: The DynamoDB table (Terraform output ``delta_log_table``), keys ``tablePath`` /
    #: ``fileName``; empty = off.
    dynamodb_table: str = ""
    region: str = "us-east-1"


class S3ASettings(_Model):
    """Hadoop's S3A connector (``hadoop-aws``) for ``s3a://`` data roots and landing paths.

    Credentials never live here: S3A takes them from its default chain (environment
    variables ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
    then the instance or pod role).
    """

    #: Maven coordinates of ``hadoop-aws``, added to ``spark.jars.packages`` when a data
    #: path is ``s3a://`` and Spark resolves the jars (not on EMR or in the job image);
    #: ``auto`` takes the version of the Hadoop client bundled with pyspark
    #: (``org.apache.hadoop:hadoop-aws:3.4.2``); ``None`` when the platform provides it.
    package: str | None = "auto"
    #: An S3 API other than AWS's (``http://127.0.0.1:9000``, MinIO, ...); empty = AWS.
    #: An ``http://`` endpoint turns S3A's TLS off.
    endpoint: str = ""
    #: ``bucket`` in the URL path instead of the host name (most non-AWS S3 APIs).
    path_style_access: bool = False
    #: The region S3A signs for (``fs.s3a.endpoint.region``); empty = S3A's own lookup.
    region: str = ""

    @field_validator("path_style_access", mode="before")
    @classmethod
    def _bool_text(cls, value: object) -> object:
        # ${VAR:-false} substitutes text; the YAML literals true/false arrive as bools
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return value

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value


class SparkSettings(_Model):
    """How the SparkSession is built."""

    app_name: str = "lakehouse"
    master: str | None = "local[2]"
    #: Maven coordinates of Delta's JVM jars; ``auto`` derives them from the installed
    #: pyspark and delta-spark (``io.delta:delta-spark_4.1_2.13:4.2.0``). ``None`` when the
    #: platform provides Delta (EMR's ``delta-defaults`` classification, an image with the jars).
    delta_package: str | None = "auto"
    #: Spark's Ivy directory (``spark.jars.ivy``): jars are downloaded once and reused.
    ivy_dir: str | None = None
    #: Delta's log store on S3 (see :class:`S3LogStoreSettings`).
    s3_log_store: S3LogStoreSettings = Field(default_factory=S3LogStoreSettings)
    #: The S3A connector (see :class:`S3ASettings`).
    s3a: S3ASettings = Field(default_factory=S3ASettings)
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("master")
    @classmethod
    def _master(cls, value: str | None) -> str | None:
        allowed = ("local", "local[", "spark://", "yarn", "k8s://")
        if value is not None and not value.startswith(allowed):
            raise ValueError(
                "must be local, local[N], local[*], spark://host:port, yarn or k8s://url"
            )
        return value


_BYTE_STRING = re.compile(r"(?i)(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib|p|pb|pib)?")
_BYTE_UNITS = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_byte_string(value: str) -> int:
    """Bytes in a Spark size string (``64m``, ``256MB``, ``1g``, ``1048576``); binary units.

    Examples
    --------
    >>> parse_byte_string("64m")
    67108864
    >>> parse_byte_string("1GB")
    1073741824
    >>> parse_byte_string("-1")
    Traceback (most recent call last):
    ...
    ValueError: not a Spark size string (digits and an optional unit b/k/m/g/t/p): '-1'
    """
    match = _BYTE_STRING.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"not a Spark size string (digits and an optional unit b/k/m/g/t/p): {value!r}"
        )
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * 1024 ** _BYTE_UNITS[unit]


def _byte_string(value: str) -> str:
    parse_byte_string(value)
    return value.strip()


def _positive_byte_string(value: str) -> str:
    if parse_byte_string(value) <= 0:
        raise ValueError("must be a positive size (e.g. 64m)")
    return value.strip()


def _broadcast_threshold(value: str) -> str:
    if value.strip() == "-1":
        return "-1"
    return _byte_string(value)


_DURATION = re.compile(r"(?i)\s*(\d+)\s*(s|m|h|d)\s*")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> timedelta:
    """``90s``, ``30m``, ``26h``, ``7d`` -> a timedelta (a positive whole number and a unit)."""
    match = _DURATION.fullmatch(value)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"invalid duration {value!r}: expected e.g. 90s, 30m, 26h or 7d")
    return timedelta(seconds=int(match.group(1)) * _DURATION_SECONDS[match.group(2).lower()])


def _duration(value: str) -> str:
    parse_duration(value)
    return value.strip()


ByteString = Annotated[str, AfterValidator(_byte_string)]
Duration = Annotated[str, AfterValidator(_duration)]
PositiveByteString = Annotated[str, AfterValidator(_positive_byte_string)]
BroadcastThreshold = Annotated[str, AfterValidator(_broadcast_threshold)]


# ----------------------------------------------------------- well-known numeric Spark confs

#: The largest count a well-known Spark setting may hold (partitions, cores, executors):
#: far above any real cluster, far below the ``2147483647`` that exhausts the driver.
MAX_SPARK_COUNT = 1_000_000


def _count(low: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d+", text) or not low <= int(text) <= MAX_SPARK_COUNT:
            return f"must be a whole number from {low} to {MAX_SPARK_COUNT}"
        return None

    return check


def _size(*, zero: bool = False, minus_one: bool = False) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if minus_one and value.strip() == "-1":
            return None
        try:
            size = parse_byte_string(value)
        except ValueError:
            size = -1
        if size < 0 or (size == 0 and not zero):
            allowed = (
                "a size such as 64m" + (" or 0" if zero else "") + (" or -1" if minus_one else "")
            )
            return f"must be {allowed}"
        return None

    return check


#: Spark settings whose values this project checks at load time, and the check. Spark
#: itself accepts most of them unchecked (``spark.sql.shuffle.partitions: "-7"``) and fails
#: later, deep inside a job.
SPARK_CONF_CHECKS: dict[str, Callable[[str], str | None]] = {
    "spark.sql.shuffle.partitions": _count(1),
    "spark.default.parallelism": _count(1),
    "spark.sql.adaptive.coalescePartitions.initialPartitionNum": _count(1),
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": _count(1),
    "spark.databricks.delta.snapshotPartitions": _count(1),
    "spark.executor.cores": _count(1),
    "spark.driver.cores": _count(1),
    "spark.task.cpus": _count(1),
    "spark.task.maxFailures": _count(1),
    "spark.executor.instances": _count(0),
    "spark.dynamicAllocation.minExecutors": _count(0),
    "spark.dynamicAllocation.initialExecutors": _count(0),
    "spark.dynamicAllocation.maxExecutors": _count(0),
    "spark.driver.memory": _size(),
    "spark.executor.memory": _size(),
    "spark.executor.memoryOverhead": _size(),
    "spark.driver.maxResultSize": _size(zero=True),
    "spark.sql.files.maxPartitionBytes": _size(),
    "spark.sql.adaptive.advisoryPartitionSizeInBytes": _size(),
    "spark.sql.autoBroadcastJoinThreshold": _size(minus_one=True),
}


def spark_conf_problems(conf: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with the well-known numeric settings in ``conf`` (key -> reason).

    Examples
    --------
    >>> spark_conf_problems({"spark.sql.shuffle.partitions": "-7", "spark.app.name": "x"})
    {'spark.sql.shuffle.partitions': 'must be a whole number from 1 to 1000000'}
    >>> spark_conf_problems({"spark.driver.memory": "4g"})
    {}
    """
    problems = {}
    for key, value in conf.items():
        check = SPARK_CONF_CHECKS.get(key)
        reason = check(value) if check is not None and isinstance(value, str) else None
        if reason:
            problems[key] = reason
    return problems


# ------------------------------------------------------------- paths under the data root


def relative_path_problem(value: str) -> str | None:
    """Why ``value`` (a path or glob relative to the data root) may not be used, or None.

    Absolute paths and URIs (``s3://...``) are taken as given: pointing elsewhere is then
    explicit. A relative one must name something *inside* the data root: not empty, not
    the root itself, and no ``..`` step.

    Examples
    --------
    >>> relative_path_problem("silver/orders") is None
    True
    >>> relative_path_problem("../elsewhere")
    "must stay inside the data root (no '..'); write an absolute path or URI to point elsewhere"
    """
    if "://" in value or os.path.isabs(value):
        return None
    parts = [p for p in PurePosixPath(value.strip().replace("\\", "/")).parts if p != "."]
    if ".." in parts:
        return (
            "must stay inside the data root (no '..'); write an absolute path or URI to "
            "point elsewhere"
        )
    if not parts:
        return "must name a folder inside the data root, not the data root itself"
    return None


def _relative_path(value: str) -> str:
    problem = relative_path_problem(value)
    if problem:
        raise ValueError(problem)
    return value


#: A path relative to the data root (or an explicit absolute path or URI).
DataPath = Annotated[str, AfterValidator(_relative_path)]


class AqeProfile(_Model):
    """A named set of adaptive-query-execution settings (see ``lakehouse.tuning.aqe``).

    Every field defaults to ``None`` = "leave Spark's own default": the ``default``
    profile is empty. Sizes are Spark size strings (``64m``, ``256MB``);
    ``auto_broadcast_threshold`` also accepts ``-1`` (never broadcast).
    """

    enabled: bool | None = None
    coalesce_partitions: bool | None = None
    parallelism_first: bool | None = None
    advisory_partition_size: PositiveByteString | None = None
    min_partition_size: PositiveByteString | None = None
    initial_partitions: int | None = Field(default=None, ge=1, le=100_000)
    skew_join: bool | None = None
    skewed_partition_factor: float | None = Field(default=None, gt=1, le=1000)
    skewed_partition_threshold: PositiveByteString | None = None
    local_shuffle_reader: bool | None = None
    auto_broadcast_threshold: BroadcastThreshold | None = None
    #: Further runtime SQL settings (``spark.sql.*`` only), passed through verbatim.
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("extra")
    @classmethod
    def _extra_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in value if not k.startswith("spark.sql."))
        if bad:
            raise ValueError(f"keys must be runtime SQL settings starting with 'spark.sql.': {bad}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AqeProfile:
        if (
            self.min_partition_size is not None
            and self.advisory_partition_size is not None
            and parse_byte_string(self.min_partition_size)
            > parse_byte_string(self.advisory_partition_size)
        ):
            raise ValueError(
                f"min_partition_size ({self.min_partition_size}) must not exceed "
                f"advisory_partition_size ({self.advisory_partition_size})"
            )
        if self.enabled is False:
            tuned = sorted(
                name
                for name, value in self
                if name not in ("enabled", "extra") and value is not None
            )
            if tuned:
                raise ValueError(f"enabled is false, so these settings would be ignored: {tuned}")
        return self


# ------------------------------------------------------------- data quality (issue 7)


def _sql_expression(value: str) -> str:
    # The static checks (non-empty, length, no ';' or comment markers) live with the rest of
    # SQL safety; Spark's parser checks the rest when a job starts.
    return check_expression_text(value)


SqlExpression = Annotated[str, AfterValidator(_sql_expression)]


class Expectation(_Model):
    """A row-level data-quality rule: a SQL boolean expression over one row.

    ``warn`` keeps failing rows (counted), ``drop`` sends them to the quarantine table
    with the expectation's name, ``fail`` stops the job before the target is written.
    A NULL result counts as a failure. The expression is checked with Spark's SQL parser
    (see :func:`lakehouse.quality.validate_expression`) before anything runs.
    """

    name: Identifier
    expr: SqlExpression
    action: Literal["warn", "drop", "fail"] = "warn"


class RowCountBounds(_Model):
    """Table-level check: the number of rows lies in ``[min, max]`` (either may be omitted)."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    action: Literal["warn", "fail"] = "fail"

    @model_validator(mode="after")
    def _ordered(self) -> RowCountBounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class FreshnessCheck(_Model):
    """Table-level check: the newest value of ``column`` is at most ``max_age_hours`` old."""

    column: Identifier
    max_age_hours: float = Field(gt=0)
    action: Literal["warn", "fail"] = "fail"


class TableQuality(_Model):
    """Data-quality settings of one table (``tables.<name>.quality`` in YAML).

    Examples
    --------
    >>> q = TableQuality.model_validate({
    ...     "expectations": [{"name": "positive_qty", "expr": "quantity > 0", "action": "drop"}],
    ...     "unique_keys": ["order_id"],
    ...     "not_null": ["order_id"],
    ...     "checks": {"valid_interval": "valid_to IS NULL OR valid_to > valid_from"},
    ... })
    >>> q.expectations[0].action
    'drop'
    """

    expectations: list[Expectation] = Field(default_factory=list)
    row_count: RowCountBounds | None = None
    #: Columns that together identify a row; duplicates fail the check.
    unique_keys: list[Identifier] = Field(default_factory=list)
    unique_action: Literal["warn", "fail"] = "fail"
    freshness: FreshnessCheck | None = None
    #: Delta constraints added with ``ALTER TABLE ... ADD CONSTRAINT`` (see
    #: :func:`lakehouse.quality.apply_constraints`): ``<col>_not_null`` CHECKs and named CHECKs.
    not_null: list[Identifier] = Field(default_factory=list)
    checks: dict[Identifier, SqlExpression] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> TableQuality:
        names = [e.name for e in self.expectations]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"expectation names must be unique; duplicated: {dupes}")
        return self


class TableSettings(_Model):
    """Where a table lives and how it is laid out (see ``lakehouse.tuning.maintenance``)."""

    path: DataPath
    layer: Literal["landing", "bronze", "silver", "gold", "quarantine", "meta"]
    partition_by: list[Identifier] = Field(default_factory=list)
    description: str = ""
    #: Written outside this pipeline (another team, a CDC tool): jobs may read it although
    #: no declared job writes it. Without it, such an input is a configuration error.
    external: bool = False
    #: Columns OPTIMIZE ... ZORDER BY uses (not partition columns; not with cluster_by).
    zorder_by: list[Identifier] = Field(default_factory=list)
    #: Range buckets per Z-order column (Delta's ``spark.databricks.io.skipping.mdc.rangeId.max``,
    #: default 1000), with Delta's noise byte off. About files ** (1 / len(zorder_by)) per
    #: Z-ordered partition (8 for 64 files and two columns) makes every output file one cell
    #: of the curve; see docs/performance.md. None keeps Delta's defaults.
    zorder_ranges: int | None = Field(default=None, ge=2)
    #: Delta liquid clustering columns (not with partition_by or zorder_by).
    cluster_by: list[Identifier] = Field(default_factory=list)
    #: ``delta.targetFileSize`` (a size string such as ``128m``).
    target_file_size: PositiveByteString | None = None
    #: ``delta.dataSkippingStatsColumns``: the columns Delta keeps min/max statistics for.
    data_skipping_stats_columns: list[Identifier] = Field(default_factory=list)
    #: ``delta.enableDeletionVectors``; None leaves Delta's default.
    deletion_vectors: bool | None = None
    #: What a read that declares a partition range does when it reads outside it.
    pruning_guard: Literal["off", "warn", "fail"] = "off"
    #: How old the table's last successful write may get (``26h``, ``7d``) before
    #: ``lakehouse runs --check-slo`` fails; None = no freshness objective.
    freshness_slo: Duration | None = None

    @model_validator(mode="after")
    def _layout(self) -> TableSettings:
        if self.cluster_by and self.partition_by:
            raise ValueError(
                f"cluster_by {self.cluster_by} cannot be combined with partition_by "
                f"{self.partition_by} (Delta liquid clustering replaces partitioning)"
            )
        if self.cluster_by and self.zorder_by:
            raise ValueError(
                f"cluster_by {self.cluster_by} cannot be combined with zorder_by "
                f"{self.zorder_by} (a clustered table is laid out by OPTIMIZE itself)"
            )
        overlap = sorted(set(self.zorder_by) & set(self.partition_by))
        if overlap:
            raise ValueError(f"zorder_by must not repeat partition columns: {overlap}")
        if self.zorder_ranges is not None and not self.zorder_by:
            raise ValueError(f"zorder_ranges {self.zorder_ranges} needs zorder_by columns")
        return self

    #: Expectations, table-level checks and Delta constraints (issue 7); None = no checks.
    quality: TableQuality | None = None


class JobSettings(_Model):
    """A job's declaration (``conf/jobs/<job>.yaml``): where its code is, what it reads and
    writes, and the settings every job has.

    A job module may define ``class Config(JobSettings)`` with its own keys; the loader
    validates the job's YAML against it (unknown keys are errors, as everywhere). The run
    order comes from ``inputs`` and ``outputs`` (see :mod:`lakehouse.pipeline.registry`).

    Examples
    --------
    >>> spec = JobSettings.model_validate(
    ...     {"module": "jobs.silver_customers", "inputs": ["bronze_customers"],
    ...      "outputs": ["dim_customer"]})
    >>> spec.enabled, spec.aqe_profile
    (True, 'default')
    """

    #: The importable module that holds the job's ``run(ctx)`` (and optional ``Config``).
    module: ModulePath
    #: Tables the job reads (names under ``tables:``).
    inputs: list[Identifier] = Field(default_factory=list)
    #: Tables the job writes.
    outputs: list[Identifier] = Field(default_factory=list)
    description: str = ""
    enabled: bool = True
    aqe_profile: str = "default"

    @model_validator(mode="after")
    def _distinct(self) -> JobSettings:
        for name in ("inputs", "outputs"):
            values = getattr(self, name)
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"{name} lists a table more than once: {dupes}")
        return self

    def declared_tables(self) -> dict[str, str]:
        """Every table this job's own settings name (``*_table`` keys, ``tables`` and
        ``*_tables`` lists), keyed by the setting's dotted name. The loader checks each is a
        declared table and is listed in the job's inputs or outputs."""
        found: dict[str, str] = {}
        for key, value in self:
            if key.endswith("_table") and isinstance(value, str):
                found[key] = value
            elif (key == "tables" or key.endswith("_tables")) and isinstance(value, list):
                found.update({f"{key}.{i}": v for i, v in enumerate(value)})
        return found


class PathSettings(_Model):
    #: Root of every table path; local directory or an object-store URI (s3://...).
    data_root: str
    #: Where landing files are read from (relative to data_root unless absolute/URI).
    landing: DataPath = "landing"
    #: Where run reports (JSON) are written.
    reports: DataPath = "_reports"

    @field_validator("data_root")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(
                "must not be empty (is the environment variable it is taken from, such as "
                "LAKEHOUSE_DATA_ROOT, set but empty? unset it or give it a path)"
            )
        return value


class MetricsSettings(_Model):
    """Prometheus metrics of each run (``lakehouse.pipeline.metrics``); both off by default."""

    #: Push each run's metrics to this Pushgateway (``http(s)://host:port``).
    pushgateway_url: str | None = None
    #: Write each run's metrics to this file, for node-exporter's textfile collector
    #: (a local path; written atomically).
    textfile: str | None = None
    #: The ``job`` grouping key on the Pushgateway.
    job: Identifier = "lakehouse"

    @field_validator("pushgateway_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value


class ProgressSettings(_Model):
    """Live progress of ``lakehouse run`` (``lakehouse.pipeline.progress``)."""

    #: Off a terminal: seconds between heartbeat log lines while a job runs.
    heartbeat_seconds: float = Field(default=30.0, ge=0.1, le=3600)


#: What each OpenLineage transport type needs (the client's own configuration keys).
_LINEAGE_TRANSPORTS = {"console": (), "file": ("log_file_path",), "http": ("url",)}


class LineageSettings(_Model):
    """OpenLineage events of each job run (``lakehouse.pipeline.lineage``); off by default."""

    #: The ``openlineage-python`` client's transport, in its own configuration format:
    #: ``{type: console}``, ``{type: file, log_file_path: ..., append: true}`` or
    #: ``{type: http, url: http://marquez:5000, endpoint: api/v1/lineage}``. None = off.
    transport: dict[str, Any] | None = None
    #: The namespace of the jobs (``job.namespace`` of every event).
    namespace: str = "lakehouse"

    @field_validator("transport")
    @classmethod
    def _transport(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        kind = value.get("type")
        if kind not in _LINEAGE_TRANSPORTS:
            raise ValueError(f"type must be one of {sorted(_LINEAGE_TRANSPORTS)}, got {kind!r}")
        missing = [k for k in _LINEAGE_TRANSPORTS[kind] if not value.get(k)]
        if missing:
            raise ValueError(f"a {kind} transport needs {', '.join(missing)}")
        return value


class CostSettings(_Model):
    """Estimated cost of each run (``lakehouse.pipeline.cost``): a price table, no network.

    Prices are USD per instance-hour, on-demand. A node group of ``submit.cluster`` is
    priced by its ``instance_type``, or by its ``name`` when it has none (standalone,
    YARN). Empty ``prices`` = no cluster cost, only core-seconds.
    """

    #: On-demand USD per instance-hour, by instance type (or node-group name).
    prices: dict[str, float] = Field(default_factory=dict)
    #: What spot capacity saves against on-demand: 0.6 = spot costs 40% of the price.
    spot_discount: float = Field(default=0.6, ge=0, lt=1)
    #: Runs on a ``local[...]`` master: USD per core-hour; None = core-seconds only.
    local_core_hour: float | None = Field(default=None, ge=0)

    @field_validator("prices")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if v < 0}
        if bad:
            raise ValueError(f"prices must not be negative: {bad}")
        return value


class GeneratorSettings(_Model):
    seed: int = 42
    orders: int = Field(default=100_000, ge=1, le=1_000_000_000)
    customers: int | None = Field(default=None, ge=1, le=1_000_000_000)
    products: int | None = Field(default=None, ge=1, le=1_000_000_000)
    #: At most 100 years of orders (dates past year 9999 do not exist).
    days: int = Field(default=365, ge=1, le=36_600)
    start_date: str = "2025-01-01"
    malformed_fraction: float = Field(default=0.002, ge=0, le=0.5)


class EmrSubmitSettings(_Model):
    """Amazon EMR (steps on a running cluster), EMR Serverless and EMR on EKS; values from
    Terraform."""

    cluster_id: str = ""
    region: str = "us-east-1"
    release_label: str = "emr-spark-8.1.0"
    #: Where artifacts are uploaded: ``s3://<artifacts_bucket>/<prefix>``.
    artifacts_uri: str = ""
    #: The cluster's LogUri (``s3://<logs_bucket>/emr/``); step stderr is read from it.
    log_uri: str = ""
    kms_key_arn: str = ""
    step_timeout_s: int = Field(default=3600, ge=1)
    poll_s: int = Field(default=30, ge=1)
    action_on_failure: Literal["CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER"] = "CONTINUE"
    #: EMR Serverless application id and the job's execution role.
    serverless_application_id: str = ""
    serverless_execution_role_arn: str = ""
    #: EMR on EKS virtual cluster id and the job execution role (IRSA trust).
    eks_virtual_cluster_id: str = ""
    eks_execution_role_arn: str = ""
    #: Alternative endpoint (tests: a local moto server); empty for AWS.
    endpoint_url: str = ""


class KubernetesSubmitSettings(_Model):
    """Spark on Kubernetes (spark-operator ``SparkApplication`` or native spark-submit)."""

    namespace: str = "spark"
    #: The driver's and executors' service account. Its ``eks.amazonaws.com/role-arn``
    #: annotation (set by terraform/modules/spark-kubernetes) gives the pods their IAM role.
    service_account: str = "spark"
    region: str = "us-east-1"
    image: str = "apache/spark:4.1.1-scala2.13-java17-python3-ubuntu"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    spark_version: str = "4.1.1"
    #: ``k8s://https://<api-server>`` for native ``spark-submit --master k8s://...``.
    api_server: str = "https://kubernetes.default.svc"
    artifacts_uri: str = ""
    #: ``key=value`` node selectors and ``key=value:Effect`` toleration (Terraform outputs).
    driver_node_selector: str = "lakehouse/capacity=on-demand"
    executor_node_selector: str = "lakehouse/capacity=spot"
    executor_toleration: str = "lakehouse/capacity=spot:NoSchedule"
    driver_cores: int = Field(default=1, ge=1)
    driver_memory: str = "2g"
    ttl_seconds: int = Field(default=3600, ge=0)


class SubmitSettings(_Model):
    """How ``spark-submit.sh`` / ``lakehouse submit`` run the packaged job on this environment.

    The target is the command (``spark-submit.sh standalone``, ``lakehouse submit emr``);
    this section says how that target runs here. ``cluster`` is the node description given
    to :func:`lakehouse.deploy.allocation.spot_aware_allocation` (schema: :class:`lakehouse.config.cluster.ClusterSpec`); its settings are merged
    under ``conf`` (``conf`` wins).
    """

    master: str | None = None
    deploy_mode: Literal["client", "cluster"] = "client"
    dist_dir: str = "dist"
    driver_memory: str | None = None
    conf: dict[str, str] = Field(default_factory=dict)
    cluster: dict[str, Any] | None = None
    emr: EmrSubmitSettings = EmrSubmitSettings()
    kubernetes: KubernetesSubmitSettings = KubernetesSubmitSettings()

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            ClusterSpec.parse(value)  # AllocationError(ValueError) -> reported with the key path
        return value


class Settings(_Model):
    """The whole, validated configuration of one environment."""

    env: str
    conf_dir: str
    paths: PathSettings
    spark: SparkSettings = SparkSettings()
    aqe_profiles: dict[str, AqeProfile] = Field(default_factory=lambda: {"default": AqeProfile()})
    tables: dict[Identifier, TableSettings]
    #: Each value is an instance of its job module's ``Config`` (validated by the loader);
    #: SerializeAsAny keeps the job's own keys in ``model_dump`` (resolved cluster configs).
    jobs: dict[Identifier, SerializeAsAny[JobSettings]]
    generator: GeneratorSettings = GeneratorSettings()
    submit: SubmitSettings | None = None
    metrics: MetricsSettings = MetricsSettings()
    progress: ProgressSettings = ProgressSettings()
    lineage: LineageSettings = LineageSettings()
    cost: CostSettings = CostSettings()

    @model_validator(mode="after")
    def _cluster_priced(self) -> Settings:
        """With a price table, every node group of ``submit.cluster`` must have a price."""
        cluster = self.submit.cluster if self.submit is not None else None
        if not self.cost.prices or cluster is None:
            return self
        spec = ClusterSpec.parse(cluster)
        missing = [
            f"{g.name} ({g.instance_type or 'no instance_type'})"
            for g in spec.node_groups
            if (g.instance_type or g.name) not in self.cost.prices
        ]
        if missing:
            raise ValueError(
                "cost.prices has no price for node group(s) of submit.cluster: "
                + ", ".join(missing)
                + "; key a price by the group's instance_type (or its name when it has none)"
            )
        return self

    # ------------------------------------------------------------------ helpers

    def _resolve(self, path: str) -> str:
        if "://" in path or os.path.isabs(path):
            return path
        root = self.paths.data_root
        if "://" in root:
            return root.rstrip("/") + "/" + path
        return str(Path(root) / path)

    def table_path(self, name: str) -> str:
        """Location of table ``name`` (an absolute local path or a URI)."""
        try:
            table = self.tables[name]
        except KeyError as exc:
            raise KeyError(f"unknown table {name!r}; known: {sorted(self.tables)}") from exc
        return self._resolve(table.path)

    @property
    def landing_path(self) -> str:
        return self._resolve(self.paths.landing)

    @property
    def reports_path(self) -> str:
        return self._resolve(self.paths.reports)

    def job(self, name: str) -> JobSettings:
        """The declaration and settings of job ``name``."""
        try:
            return self.jobs[name]
        except KeyError as exc:
            raise KeyError(f"unknown job {name!r}; known: {sorted(self.jobs)}") from exc
