"""Landing files -> bronze Delta tables, append-only, with ingestion metadata.

Every landing record ends up in exactly one place: the bronze table of its feed
(all columns kept as raw strings, plus ``_ingest_time``, ``_source_file``, ``_batch_id``)
or the bronze quarantine table (the raw record and a reason). The job counts the
non-blank input lines independently of the parser and fails unless
``input = accepted + quarantined``. Files already ingested are skipped, so a re-run
reads nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from lakehouse.config import BronzeSource, Settings
from lakehouse.delta import is_delta_table, table_version
from lakehouse.generator import CUSTOMER_COLUMNS, ORDER_COLUMNS, PRODUCT_COLUMNS
from lakehouse.quarantine import to_quarantine
from lakehouse.report import JobResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JOB = "bronze_ingest"
CORRUPT = "_corrupt_record"
ENTITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": CUSTOMER_COLUMNS,
    "products": PRODUCT_COLUMNS,
    "orders": ORDER_COLUMNS,
}
METADATA_COLUMNS = ("_ingest_time", "_source_file", "_batch_id")


@dataclass(frozen=True)
class BronzeOutput:
    accepted: DataFrame
    quarantined: DataFrame


def raw_schema(entity: str) -> StructType:
    """All-string schema of a feed plus the parser's corrupt-record column."""
    fields = [StructField(c, StringType(), True) for c in ENTITY_COLUMNS[entity]]
    return StructType([*fields, StructField(CORRUPT, StringType(), True)])


def transform(
    parsed: DataFrame,
    *,
    entity: str,
    fmt: str,
    batch_id: str,
    ingest_time: datetime,
) -> BronzeOutput:
    """Split parsed landing rows into bronze rows and quarantined raw records.

    ``parsed`` has the feed's string columns, ``_corrupt_record`` (set by Spark's
    PERMISSIVE parser for a malformed line) and ``_source_file``.
    """
    columns = ENTITY_COLUMNS[entity]
    bad = F.col(CORRUPT).isNotNull()
    accepted = parsed.where(~bad).select(
        *[F.col(c) for c in columns],
        F.lit(ingest_time).cast("timestamp").alias("_ingest_time"),
        F.col("_source_file"),
        F.lit(batch_id).alias("_batch_id"),
    )
    reason = (
        F.lit(f"malformed csv record: expected {len(columns)} columns")
        if fmt == "csv"
        else F.lit("malformed json record")
    )
    quarantined = to_quarantine(
        parsed.where(bad),
        stage=JOB,
        reason=reason,
        source=F.col("_source_file"),
        record=F.col(CORRUPT),
        batch_id=batch_id,
    )
    return BronzeOutput(accepted=accepted, quarantined=quarantined)


# ----------------------------------------------------------------------------- IO


def _glob(spark: SparkSession, pattern: str) -> list[str]:
    """Files matching ``pattern`` through Hadoop's FileSystem (local, s3a, hdfs alike)."""
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the SparkSession has no JVM gateway (was it stopped?)")
    hpath = jvm.org.apache.hadoop.fs.Path(pattern)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    statuses = fs.globStatus(hpath) or []
    return sorted(str(s.getPath().toUri().toString()) for s in statuses if s.isFile())


def _normalise(path: str) -> str:
    return path.replace("file:///", "file:/", 1)


def ingested_files(spark: SparkSession, settings: Settings, tables: Sequence[str]) -> set[str]:
    """Landing files already recorded in the bronze tables or the bronze quarantine."""
    seen: set[str] = set()
    for name in tables:
        path = settings.table_path(name)
        if is_delta_table(spark, path):
            rows = spark.read.format("delta").load(path).select("_source_file").distinct().collect()
            seen.update(_normalise(r[0]) for r in rows if r[0])
    qpath = settings.table_path(settings.jobs.bronze_ingest.quarantine_table)
    if is_delta_table(spark, qpath):
        rows = (
            spark.read.format("delta")
            .load(qpath)
            .where(F.col("stage") == JOB)
            .select("source")
            .distinct()
            .collect()
        )
        seen.update(_normalise(r[0]) for r in rows if r[0])
    return seen


def read_landing(spark: SparkSession, files: list[str], source: BronzeSource) -> DataFrame:
    """Parse landing files permissively; malformed lines keep their raw text."""
    reader = (
        spark.read.schema(raw_schema(source.entity))
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
    )
    if source.format == "csv":
        df = reader.option("header", "true").option("enforceSchema", "false").csv(files)
    else:
        df = reader.json(files)
    return df.select("*", F.col("_metadata.file_path").alias("_source_file"))


def count_input_records(spark: SparkSession, files: list[str], fmt: str) -> int:
    """Non-blank lines, minus one header per CSV file: counted without the parser."""
    lines = spark.read.text(files).where(F.trim(F.col("value")) != "").count()
    return int(lines - (len(files) if fmt == "csv" else 0))


def run(spark: SparkSession, settings: Settings, *, batch_id: str) -> JobResult:
    cfg = settings.jobs.bronze_ingest
    result = JobResult(job=JOB)
    ingest_time = datetime.now().replace(microsecond=0)
    seen = ingested_files(spark, settings, sorted({s.table for s in cfg.sources}))
    qpath = settings.table_path(cfg.quarantine_table)
    per_source: dict[str, dict[str, int]] = {}
    for source in cfg.sources:
        pattern = settings.landing_path.rstrip("/") + "/" + source.glob
        files = [f for f in _glob(spark, pattern) if _normalise(f) not in seen]
        key = f"{source.table}<-{source.glob}"
        if not files:
            per_source[key] = {"files": 0, "input": 0, "accepted": 0, "quarantined": 0}
            continue
        parsed = read_landing(spark, files, source).persist()
        try:
            out = transform(
                parsed,
                entity=source.entity,
                fmt=source.format,
                batch_id=batch_id,
                ingest_time=ingest_time,
            )
            n_in = count_input_records(spark, files, source.format)
            n_bad = parsed.where(F.col(CORRUPT).isNotNull()).count()
            n_ok = parsed.count() - n_bad
            per_source[key] = {
                "files": len(files),
                "input": n_in,
                "accepted": n_ok,
                "quarantined": n_bad,
            }
            result.check_reconciled(rows_in=n_in, accepted=n_ok, quarantined=n_bad)
            out.accepted.write.format("delta").mode("append").save(
                settings.table_path(source.table)
            )
            if n_bad:
                out.quarantined.write.format("delta").mode("append").save(qpath)
        finally:
            parsed.unpersist()
        result.rows_in += n_in
        result.rows_written += n_ok
        result.rows_quarantined += n_bad
    for source in cfg.sources:
        result.tables[source.table] = table_version(spark, settings.table_path(source.table))
    result.tables[cfg.quarantine_table] = table_version(spark, qpath)
    result.details["sources"] = per_source
    result.check_reconciled(
        rows_in=result.rows_in, accepted=result.rows_written, quarantined=result.rows_quarantined
    )
    return result
