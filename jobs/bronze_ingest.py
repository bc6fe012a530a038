"""Landing files -> bronze Delta tables, append-only, with ingestion metadata.

Each feed is a stream over its landing glob (:meth:`~lakehouse.pipeline.JobContext.stream_files`):
a run reads only the files that arrived since the last run, found by Spark's file source
and its checkpoint, not by scanning bronze. Each increment is written with Delta's
idempotent identity, so a crash at any point followed by a re-run commits nothing twice.

Every landing record ends up in exactly one place: the bronze table of its feed (all
columns kept as raw strings, plus ``_ingest_time``, ``_source_file``, ``_batch_id``) or the
bronze quarantine table (the raw record and a reason). Input lines are counted per file
independently of the parser, and each file must reconcile (``input = accepted +
quarantined``). A file that cannot be read as its format (empty, compressed, UTF-16,
binary) or whose records do not reconcile (a JSON array on one line) is quarantined *as a
file* (path, reason, size) and the rest of the increment proceeds. A landing file changed
after it was ingested (new size or modification time) is not ingested again: it is
quarantined as a file with the reason "changed after ingestion" and shows in the run
report; deliver changes as new files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from lakehouse.config import Identifier, JobSettings
from lakehouse.pipeline import JobContext
from lakehouse.pipeline.incremental import Increment
from lakehouse.quality import SchemaDriftError, to_quarantine
from lakehouse.spark.delta import is_delta_table
from lakehouse.spark.fs import FileInfo, glob_files, path_exists, read_head

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

JOB = "bronze_ingest"
log = logging.getLogger(__name__)
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
    #: The feed's name: its checkpoint folder and its streams' identity. Default
    #: ``<entity>_<format>``.
    name: Identifier | None = None

    @property
    def stream_name(self) -> str:
        return self.name or f"{self.entity}_{self.format}"


class Config(JobSettings):
    """``conf/jobs/bronze_ingest.yaml``: the landing feeds, the bronze quarantine and the
    landing ledger (every ingested file's path, size and modification time)."""

    sources: list[BronzeSource]
    quarantine_table: Identifier = "quarantine_bronze"
    ledger_table: Identifier = "landing_ledger"

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        names = [s.stream_name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sources: two feeds named {dupes}; give each a distinct name:")
        return self

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

#: Columns of the landing ledger: one row per landing file handled (ingested, quarantined as
#: a file, or found changed after ingestion).
LEDGER_SCHEMA = StructType(
    [
        StructField("path", StringType(), False),
        StructField("size", LongType(), False),
        StructField("modified_ms", LongType(), False),
        StructField("source", StringType(), False),
        StructField("status", StringType(), False),
        StructField("batch_id", StringType(), False),
    ]
)


def screen_file(head: bytes, size: int) -> str | None:
    """Why a landing file cannot be read as text at all, from its size and first bytes;
    None when it can.

    Examples
    --------
    >>> screen_file(b"", 0)
    'empty file (0 bytes)'
    >>> screen_file(b"\\x1f\\x8b\\x08", 120)
    'compressed file (gzip): landing files must be plain UTF-8 text'
    >>> screen_file(b"order_id,customer_id", 80) is None
    True
    """
    if size == 0:
        return "empty file (0 bytes)"
    if head.startswith(b"\x1f\x8b"):
        return "compressed file (gzip): landing files must be plain UTF-8 text"
    if head.startswith(b"PK\x03\x04"):
        return "compressed file (zip): landing files must be plain UTF-8 text"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text: landing files must be UTF-8"
    if b"\x00" in head:
        return "binary content (NUL bytes): not a text file"
    return None


def _screen(spark: SparkSession, file: FileInfo) -> str | None:
    from py4j.protocol import Py4JJavaError

    try:
        head = read_head(spark, file.path) if file.size else b""
    except Py4JJavaError as exc:
        if not path_exists(spark, file.path):
            return "file disappeared after it was listed (deleted or moved before ingestion)"
        return f"file cannot be opened: {str(exc.java_exception)[:300]}"
    return screen_file(head, file.size)


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


def input_lines_per_file(spark: SparkSession, files: list[str], fmt: str) -> dict[str, int]:
    """Input records per file, counted without the parser: lines with content (for JSON,
    anything but whitespace and NUL, which Spark's reader skips too), minus the header of
    each CSV file."""
    value = F.col("value")
    if fmt == "csv":
        content = F.trim(value) != ""
    else:
        content = F.regexp_replace(value, "[\\s\\x00\\uFEFF]", "") != ""
    rows = (
        spark.read.text(files)
        .where(content)
        .groupBy(F.col("_metadata.file_path").alias("f"))
        .count()
        .collect()
    )
    header = 1 if fmt == "csv" else 0
    return {r["f"]: int(r["count"]) - header for r in rows}


@dataclass
class FeedIncrement:
    """What one increment of one feed produced: rows to write and the files set aside."""

    accepted: DataFrame | None = None
    quarantined: DataFrame | None = None
    #: Files quarantined as a whole: path -> (reason, size in bytes).
    rejected_files: dict[str, tuple[str, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: The parsed files, cached for the counts and the writes; unpersisted after the writes.
    parsed: DataFrame | None = None


def _parse(
    spark: SparkSession,
    source: BronzeSource,
    paths: list[str],
    *,
    batch_id: str,
    ingest_time: datetime,
) -> FeedIncrement:
    """Parse readable files, split rows, reconcile each file; set aside files that do not."""
    columns = landing_columns(spark, paths, source)
    parsed = read_landing(spark, paths, source, columns).persist()
    lines = input_lines_per_file(spark, paths, source.format)
    data_cols = [c for c in parsed.columns if c not in (CORRUPT, "_source_file")]
    bad = rejection_reason(data_cols, source.format).isNotNull().cast("long")
    # one pass over the parsed files: records and rejected records per file
    per_file = (
        parsed.groupBy("_source_file")
        .agg(F.count(F.lit(1)).alias("rows"), F.sum(bad).alias("bad"))
        .collect()
    )
    parsed_rows = {r["_source_file"]: int(r["rows"]) for r in per_file}
    bad_rows = {r["_source_file"]: int(r["bad"] or 0) for r in per_file}
    out = FeedIncrement(parsed=parsed)
    for f in sorted(set(lines) | set(parsed_rows)):
        n_lines, n_rows = max(lines.get(f, 0), 0), parsed_rows.get(f, 0)
        if n_lines != n_rows:
            out.rejected_files[f] = (
                f"records do not reconcile: {n_lines} input lines, {n_rows} records parsed "
                "(e.g. a JSON array on one line, or lines the reader skips)",
                -1,
            )
    kept = parsed.where(~F.col("_source_file").isin(sorted(out.rejected_files)))
    split = transform(
        kept, entity=source.entity, fmt=source.format, batch_id=batch_id, ingest_time=ingest_time
    )
    kept_files = [f for f in parsed_rows if f not in out.rejected_files]
    n_bad = sum(bad_rows[f] for f in kept_files)
    n_kept = sum(parsed_rows[f] for f in kept_files)
    n_in = sum(v for f, v in lines.items() if f not in out.rejected_files)
    out.accepted, out.quarantined = split.accepted, split.quarantined
    out.counts = {"input": n_in, "accepted": n_kept - n_bad, "quarantined": n_bad}
    return out


def _file_rejects(
    spark: SparkSession, rejected: dict[str, tuple[str, int]], *, batch_id: str
) -> DataFrame:
    """Files set aside whole, in the quarantine shape (the record says it was a file)."""
    rows = [(path, reason, size) for path, (reason, size) in sorted(rejected.items())]
    df = spark.createDataFrame(rows, "path string, reason string, size long")
    size = F.when(F.col("size") >= 0, F.concat(F.col("size").cast("string"), F.lit(" bytes")))
    return to_quarantine(
        df,
        stage=JOB,
        reason=F.col("reason"),
        source=F.col("path"),
        record=F.concat(
            F.lit("whole file not ingested"),
            F.coalesce(F.concat(F.lit(" ("), size, F.lit(")")), F.lit("")),
        ),
        batch_id=batch_id,
    )


def _ledger_rows(
    spark: SparkSession,
    files: Sequence[FileInfo],
    status: dict[str, str],
    *,
    source: str,
    batch_id: str,
) -> DataFrame:
    rows = [
        (f.path, f.size, f.modified_ms, source, status.get(f.path, "ingested"), batch_id)
        for f in files
    ]
    return spark.createDataFrame(rows, LEDGER_SCHEMA)


def _write_increment(
    ctx: JobContext[Config],
    source: BronzeSource,
    inc: Increment,
    files: list[FileInfo],
    feed: FeedIncrement,
) -> None:
    """Quarantine, bronze rows, then the ledger: each under the increment's identity."""
    cfg = ctx.config
    rejects = feed.quarantined
    if feed.rejected_files:
        by_file = _file_rejects(ctx.spark, feed.rejected_files, batch_id=ctx.batch_id)
        rejects = by_file if rejects is None else rejects.unionByName(by_file)
    if rejects is not None and feed.counts.get("quarantined", 0) + len(feed.rejected_files):
        inc.save(
            cfg.quarantine_table,
            rejects.write.format("delta").mode("append"),
            ctx.output_path(cfg.quarantine_table),
        )
    if feed.accepted is not None and feed.counts.get("accepted", 0):
        writer = feed.accepted.write.format("delta").mode("append")
        if source.schema_evolution:
            writer = writer.option("mergeSchema", "true")
        inc.save(source.table, writer, ctx.output_path(source.table))
    status = {p: f"quarantined: {reason}" for p, (reason, _) in feed.rejected_files.items()}
    ledger = _ledger_rows(
        ctx.spark, files, status, source=source.stream_name, batch_id=ctx.batch_id
    )
    inc.save(
        cfg.ledger_table,
        ledger.write.format("delta").mode("append"),
        ctx.output_path(cfg.ledger_table),
    )


def _ingest(
    ctx: JobContext[Config],
    source: BronzeSource,
    inc: Increment,
    *,
    handled: frozenset[str] = frozenset(),
) -> None:
    """One increment of one feed: the new files Spark's file source handed out, less those
    the landing ledger already records (``handled``). The file source hands a file out
    again only after its checkpoint was reset (``lakehouse rollback``), or when a crash
    came after this increment's ledger commit; the ledger, rolled back with bronze, says
    which files bronze holds."""
    listed = inc.df.select("path", "length", F.unix_millis("modificationTime").alias("ms"))
    files = [
        FileInfo(r["path"], int(r["length"]), int(r["ms"]))
        for r in listed.collect()
        if r["path"] not in handled
    ]
    if not files:
        return
    files.sort(key=lambda f: f.path)
    inc.arrived_at = min(f.modified_ms for f in files) / 1000
    feed = FeedIncrement(counts={"input": 0, "accepted": 0, "quarantined": 0})
    readable = []
    for f in files:
        reason = _screen(ctx.spark, f)
        if reason:
            feed.rejected_files[f.path] = (reason, f.size)
        else:
            readable.append(f.path)
    if readable:
        parsed = _parse(
            ctx.spark,
            source,
            readable,
            batch_id=ctx.batch_id,
            ingest_time=datetime.now().replace(microsecond=0),
        )
        parsed.rejected_files.update(feed.rejected_files)
        feed = parsed
    try:
        ctx.result.check_reconciled(
            rows_in=feed.counts["input"],
            accepted=feed.counts["accepted"],
            quarantined=feed.counts["quarantined"],
        )
        _write_increment(ctx, source, inc, files, feed)
    finally:
        if feed.parsed is not None:
            feed.parsed.unpersist()
    for path, (reason, _) in sorted(feed.rejected_files.items()):
        log.warning("%s: landing file %s quarantined as a file: %s", JOB, path, reason)
    _add_counts(ctx, source, {**feed.counts, "files": len(files),
                              "files_quarantined": len(feed.rejected_files)})  # fmt: skip
    inc.rows_read = feed.counts["input"]
    inc.rows_written = feed.counts["accepted"]


def _add_counts(ctx: JobContext[Config], source: BronzeSource, counts: dict[str, int]) -> None:
    per_source = ctx.result.details.setdefault("sources", {})
    key = f"{source.table}<-{source.glob}"
    total = per_source.setdefault(key, dict.fromkeys(counts, 0))
    for k, v in counts.items():
        total[k] = total.get(k, 0) + v
    ctx.result.rows_in += counts["input"]
    ctx.result.rows_written += counts["accepted"]
    ctx.result.rows_quarantined += counts["quarantined"]


# ------------------------------------------------------------------ changed files


def changed_files(
    known: dict[str, tuple[int, int]], listed: Sequence[FileInfo]
) -> list[tuple[FileInfo, str]]:
    """Listed files the ledger knows with another size or modification time (pure).

    Examples
    --------
    >>> f = FileInfo("file:/l/a.csv", 12, 2000)
    >>> [r for _, r in changed_files({"file:/l/a.csv": (10, 1000)}, [f])]
    ['landing file changed after ingestion (10 -> 12 bytes); not ingested again: deliver changes as a new file']
    >>> changed_files({"file:/l/a.csv": (12, 2000)}, [f])
    []
    """
    out = []
    for f in listed:
        seen = known.get(f.path)
        if seen is not None and seen != (f.size, f.modified_ms):
            out.append(
                (
                    f,
                    f"landing file changed after ingestion ({seen[0]} -> {f.size} bytes); not "
                    "ingested again: deliver changes as a new file",
                )
            )
    return out


def _known_files(ctx: JobContext[Config]) -> dict[str, tuple[int, int]]:
    """Each file's size and modification time as the ledger last recorded them."""
    path = ctx.output_path(ctx.config.ledger_table)
    if not is_delta_table(ctx.spark, path):
        return {}
    # one row per file handled (a few per file at most): read them, no shuffle
    rows = ctx.spark.read.format("delta").load(path).select("path", "size", "modified_ms")
    known: dict[str, tuple[int, int]] = {}
    for r in rows.collect():
        seen = (int(r["size"]), int(r["modified_ms"]))
        if r["path"] not in known or seen[1] > known[r["path"]][1]:
            known[r["path"]] = seen
    return known


def _flag_outside_streams(ctx: JobContext[Config]) -> frozenset[str]:
    """Quarantine (as files, once each) what the file streams never hand out: landing files
    rewritten after ingestion, and empty files (a file source sees no rows in them).
    Returns every path the ledger records, these included."""
    cfg = ctx.config
    known = _known_files(ctx)
    flagged: list[tuple[FileInfo, str, str]] = []
    for source in cfg.sources:
        listed = glob_files(ctx.spark, _pattern(ctx, source))
        flagged += [(f, reason, source.stream_name) for f, reason in changed_files(known, listed)]
        flagged += [
            (f, "empty file (0 bytes)", source.stream_name)
            for f in listed
            if f.size == 0 and f.path not in known
        ]
    handled = frozenset(known) | {f.path for f, _, _ in flagged}
    if not flagged:
        return handled
    rejects = _file_rejects(
        ctx.spark, {f.path: (reason, f.size) for f, reason, _ in flagged}, batch_id=ctx.batch_id
    )
    ctx.writes.save(
        cfg.quarantine_table,
        rejects.write.format("delta").mode("append"),
        ctx.output_path(cfg.quarantine_table),
    )
    rows = [
        (f.path, f.size, f.modified_ms, name, f"quarantined: {reason}", ctx.batch_id)
        for f, reason, name in flagged
    ]
    ctx.writes.save(
        cfg.ledger_table,
        ctx.spark.createDataFrame(rows, LEDGER_SCHEMA).write.format("delta").mode("append"),
        ctx.output_path(cfg.ledger_table),
    )
    for f, reason, _ in flagged:
        log.warning("%s: landing file %s quarantined as a file: %s", JOB, f.path, reason)
    changed = [(f, r) for f, r, _ in flagged if f.path in known]
    if changed:
        ctx.result.details["changed_files"] = [{"path": f.path, "reason": r} for f, r in changed]
    ctx.result.details["files_quarantined_unread"] = len(flagged)
    return handled


def _pattern(ctx: JobContext[Config], source: BronzeSource) -> str:
    return ctx.settings.landing_path.rstrip("/") + "/" + source.glob


def run(ctx: JobContext[Config]) -> None:
    handled = _flag_outside_streams(ctx)
    for source in ctx.config.sources:
        ingest = partial(_ingest, ctx, source, handled=handled)
        ctx.stream_files(source.stream_name, _pattern(ctx, source), ingest)
    result = ctx.result
    result.check_reconciled(
        rows_in=result.rows_in, accepted=result.rows_written, quarantined=result.rows_quarantined
    )
