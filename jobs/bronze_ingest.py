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
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from lakehouse.config import Identifier, JobSettings, Settings
from lakehouse.pipeline import JobContext
from lakehouse.quality import SchemaDriftError, to_quarantine
from lakehouse.spark.delta import is_delta_table

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

JOB = "bronze_ingest"
CORRUPT = "_corrupt_record"
#: The columns of each landing feed (the contract the landing files are held to).
CUSTOMER_COLUMNS = ("customer_id", "name", "email", "city", "tier", "op", "updated_at")
PRODUCT_COLUMNS = ("product_id", "name", "category", "price", "updated_at")
ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "product_id",
    "quantity",
    "unit_price",
    "order_ts",
)
ENTITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": CUSTOMER_COLUMNS,
    "products": PRODUCT_COLUMNS,
    "orders": ORDER_COLUMNS,
}
METADATA_COLUMNS = ("_ingest_time", "_source_file", "_batch_id")
#: Hostile-input limits (issue 7): a field longer than this is quarantined, and a
#: quarantined record is stored truncated to ``MAX_RECORD_CHARS``.
MAX_FIELD_CHARS = 65_536
MAX_RECORD_CHARS = 8_192
#: What Spark's UTF-8 decoder puts where the bytes are not valid UTF-8.
REPLACEMENT_CHAR = "\ufffd"
BOM = "\ufeff"


class BronzeSource(BaseModel):
    """One landing feed: which files, in which format, into which bronze table."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    entity: Literal["customers", "products", "orders"]
    format: Literal["csv", "json"]
    glob: str
    table: Identifier
    #: Accept landing files whose columns differ from the bronze table's (new columns are
    #: added, missing ones become NULL). Off by default: drift is rejected with a clear error.
    schema_evolution: bool = False


class Config(JobSettings):
    """``conf/jobs/bronze_ingest.yaml``: the landing feeds and the bronze quarantine."""

    sources: list[BronzeSource]
    quarantine_table: Identifier = "quarantine_bronze"

    def declared_tables(self) -> dict[str, str]:
        found = super().declared_tables()
        found.update({f"sources.{i}.table": s.table for i, s in enumerate(self.sources)})
        return found


@dataclass(frozen=True)
class BronzeOutput:
    accepted: DataFrame
    quarantined: DataFrame


def _valid_utf8(col: Column) -> Column:
    """``is_valid_utf8`` on Spark 4; on Spark 3.5 (EMR 7) the same test by round trip:
    decoding replaces invalid bytes with U+FFFD, so a string that changes was invalid."""
    if hasattr(F, "is_valid_utf8"):
        return F.is_valid_utf8(col)
    return F.decode(F.encode(col, "UTF-8"), "UTF-8") == col  # pragma: no cover - Spark 3.5


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
    # Schema evolution (opt-in per source) may bring extra columns; keep them.
    columns = [c for c in parsed.columns if c not in (CORRUPT, "_source_file")]
    reason = rejection_reason(columns, fmt)
    bad = reason.isNotNull()
    accepted = parsed.where(~bad).select(
        *[F.col(c) for c in columns],
        F.lit(ingest_time).cast("timestamp").alias("_ingest_time"),
        F.col("_source_file"),
        F.lit(batch_id).alias("_batch_id"),
    )
    raw = F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(c) for c in columns])))
    record = F.when(
        F.length(raw) > MAX_RECORD_CHARS,
        F.concat(
            F.substring(raw, 1, MAX_RECORD_CHARS),
            F.lit("...(truncated, "),
            F.length(raw).cast("string"),
            F.lit(" characters)"),
        ),
    ).otherwise(raw)
    quarantined = to_quarantine(
        parsed.where(bad),
        stage=JOB,
        reason=reason,
        source=F.col("_source_file"),
        record=record,
        batch_id=batch_id,
    )
    return BronzeOutput(accepted=accepted, quarantined=quarantined)


def rejection_reason(columns: Sequence[str], fmt: str) -> Column:
    """Why a parsed landing row is rejected, or NULL when it is accepted.

    In order: some bytes are not valid UTF-8 (a wrong encoding: the CSV reader decodes
    them to U+FFFD, the JSON reader keeps the raw line); the parser marked the line
    malformed (truncated JSON, wrong column count, an embedded newline that split a
    record); a field is longer than ``MAX_FIELD_CHARS``.
    """
    malformed = (
        f"malformed csv record: expected {len(columns)} columns"
        if fmt == "csv"
        else "malformed json record"
    )
    text = [F.coalesce(F.col(c), F.lit("")) for c in columns]
    # CSV decoding turns invalid bytes into U+FFFD; the JSON parser rejects the line and
    # keeps its raw bytes, which is_valid_utf8 (Spark 4.0+) spots.
    raw_line = F.coalesce(F.col(CORRUPT), F.lit(""))
    bad_encoding = F.concat(*text, raw_line).contains(REPLACEMENT_CHAR) | ~_valid_utf8(
        F.concat(*text, raw_line)
    )
    too_long = F.greatest(*[F.length(t) for t in text], F.lit(0)) > MAX_FIELD_CHARS
    return (
        F.when(bad_encoding, F.lit("invalid text encoding: bytes that are not UTF-8"))
        .when(F.col(CORRUPT).isNotNull(), F.lit(malformed))
        .when(too_long, F.lit(f"field longer than {MAX_FIELD_CHARS} characters"))
    )


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


def ingested_files(spark: SparkSession, settings: Settings, cfg: Config) -> set[str]:
    """Landing files already recorded in the bronze tables or the bronze quarantine."""
    seen: set[str] = set()
    for name in sorted({s.table for s in cfg.sources}):
        path = settings.table_path(name)
        if is_delta_table(spark, path):
            rows = spark.read.format("delta").load(path).select("_source_file").distinct().collect()
            seen.update(_normalise(r[0]) for r in rows if r[0])
    qpath = settings.table_path(cfg.quarantine_table)
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


def csv_header(spark: SparkSession, file: str) -> list[str]:
    """The header of a CSV landing file (a leading UTF-8 byte-order mark removed)."""
    import csv

    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the SparkSession has no JVM gateway (was it stopped?)")
    hpath = jvm.org.apache.hadoop.fs.Path(file)
    stream = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(hpath)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        line = reader.readLine() or ""
    finally:
        stream.close()
    return next(csv.reader([line.removeprefix(BOM)]), [])


def landing_columns(
    spark: SparkSession, files: list[str], source: BronzeSource
) -> dict[str, list[str]]:
    """Columns each landing file brings, checked against the feed's (schema drift, issue 7).

    CSV: each file's header. JSON: the keys present in the files' well-formed lines (one
    entry for all files). Raises :class:`~lakehouse.quality.expectations.SchemaDriftError` naming the
    file, the extra and missing columns, unless ``source.schema_evolution`` is set.
    """
    expected = list(ENTITY_COLUMNS[source.entity])
    if source.format == "csv":
        found = {f: csv_header(spark, f) for f in files}
    else:
        keys = (
            spark.read.text(files)
            .select(F.explode(F.json_object_keys(F.regexp_replace("value", "^" + BOM, ""))))
            .distinct()
            .collect()
        )
        present = {r[0] for r in keys}
        ordered = [c for c in expected if c in present] + sorted(present - set(expected))
        found = {"*": ordered}
    for file, cols in found.items():
        if cols == expected or source.schema_evolution:
            continue
        extra = [c for c in cols if c not in expected]
        missing = [c for c in expected if c not in cols]
        what = [f"extra columns {extra}"] if extra else []
        what += [f"missing columns {missing}"] if missing else []
        what = what or [f"columns in a different order {cols}; expected {expected}"]
        where = file if file != "*" else f"{source.glob} ({len(files)} files)"
        raise SchemaDriftError(
            f"{where}: schema drift rejected for {source.table}: {'; '.join(what)}. Set "
            f"schema_evolution: true on this source to accept it."
        )
    return found


def read_landing(
    spark: SparkSession,
    files: list[str],
    source: BronzeSource,
    columns: dict[str, list[str]] | None = None,
) -> DataFrame:
    """Parse landing files permissively; malformed lines keep their raw text.

    ``columns`` (from :func:`landing_columns`) gives each CSV file's header and the JSON
    keys; files are read with those columns, the feed's missing ones become NULL and
    extra ones are kept (only reachable with ``schema_evolution``). CSV headers are
    checked by :func:`landing_columns`, so the parser skips them (``enforceSchema``),
    which also makes a byte-order mark before the header harmless.
    """
    expected = list(ENTITY_COLUMNS[source.entity])
    columns = columns or dict.fromkeys(files, expected)
    groups: dict[tuple[str, ...], list[str]] = {}
    if source.format == "csv":
        for f in files:
            groups.setdefault(tuple(columns.get(f, expected)), []).append(f)
    else:
        groups[tuple(columns.get("*", expected))] = list(files)
    frames = []
    for cols, group in groups.items():
        names = list(cols) if source.schema_evolution else expected
        schema = StructType(
            [
                *[StructField(c, StringType(), True) for c in names],
                StructField(CORRUPT, StringType(), True),
            ]
        )
        reader = (
            spark.read.schema(schema)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
        )
        if source.format == "csv":
            df = reader.option("header", "true").option("enforceSchema", "true").csv(group)
        else:
            df = reader.json(group)
        extras = [c for c in names if c not in expected]
        frames.append(
            df.select(
                *[
                    F.col(c) if c in names else F.lit(None).cast("string").alias(c)
                    for c in expected
                ],
                *[F.col(c) for c in extras],
                F.col(CORRUPT),
                F.col("_metadata.file_path").alias("_source_file"),
            )
        )
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def count_input_records(spark: SparkSession, files: list[str], fmt: str) -> int:
    """Non-blank lines, minus one header per CSV file: counted without the parser."""
    lines = spark.read.text(files).where(F.trim(F.col("value")) != "").count()
    return int(lines - (len(files) if fmt == "csv" else 0))


def _ingest_source(
    ctx: JobContext[Config], source: BronzeSource, files: list[str], ingest_time: datetime
) -> dict[str, int]:
    """Parse, split and append one feed's new files; returns its counts."""
    columns = landing_columns(ctx.spark, files, source)
    parsed = read_landing(ctx.spark, files, source, columns).persist()
    try:
        out = transform(
            parsed,
            entity=source.entity,
            fmt=source.format,
            batch_id=ctx.batch_id,
            ingest_time=ingest_time,
        )
        n_in = count_input_records(ctx.spark, files, source.format)
        data_cols = [c for c in parsed.columns if c not in (CORRUPT, "_source_file")]
        n_bad = parsed.where(rejection_reason(data_cols, source.format).isNotNull()).count()
        n_ok = parsed.count() - n_bad
        ctx.result.check_reconciled(rows_in=n_in, accepted=n_ok, quarantined=n_bad)
        # Idempotent writes (issue 7): re-running this batch after a crash skips the
        # appends that already committed (Delta txnAppId/txnVersion per batch + step).
        writer = out.accepted.write.format("delta").mode("append")
        if source.schema_evolution:
            writer = writer.option("mergeSchema", "true")
        ctx.writes.save(source.table, writer, ctx.output_path(source.table))
        if n_bad:
            quarantine = ctx.config.quarantine_table
            ctx.writes.save(
                quarantine,
                out.quarantined.write.format("delta").mode("append"),
                ctx.output_path(quarantine),
            )
    finally:
        parsed.unpersist()
    return {"files": len(files), "input": n_in, "accepted": n_ok, "quarantined": n_bad}


def run(ctx: JobContext[Config]) -> None:
    cfg = ctx.config
    result = ctx.result
    ingest_time = datetime.now().replace(microsecond=0)
    seen = ingested_files(ctx.spark, ctx.settings, cfg)
    per_source: dict[str, dict[str, int]] = {}
    for source in cfg.sources:
        pattern = ctx.settings.landing_path.rstrip("/") + "/" + source.glob
        files = [f for f in _glob(ctx.spark, pattern) if _normalise(f) not in seen]
        key = f"{source.table}<-{source.glob}"
        if not files:
            per_source[key] = {"files": 0, "input": 0, "accepted": 0, "quarantined": 0}
            continue
        counts = _ingest_source(ctx, source, files, ingest_time)
        per_source[key] = counts
        result.rows_in += counts["input"]
        result.rows_written += counts["accepted"]
        result.rows_quarantined += counts["quarantined"]
    result.details["sources"] = per_source
    result.check_reconciled(
        rows_in=result.rows_in, accepted=result.rows_written, quarantined=result.rows_quarantined
    )
