"""Data-quality expectations, table-level checks, results and Delta constraints.

Expectations come from ``tables.<name>.quality`` (:class:`lakehouse.config.TableQuality`):
SQL boolean expressions over one row, each with an action:

* ``warn``: the row is kept and counted;
* ``drop``: the row goes to the quarantine table, the reason names the expectation;
* ``fail``: :class:`ExpectationFailedError` is raised before anything is written, so the
  target table is unchanged.

Every expression is checked by :func:`lakehouse.spark.sql.validate_expression` (re-exported
here with :data:`ALLOWED_FUNCTIONS` and :class:`UnsafeExpressionError`) before it is used:
parsed with Spark's own SQL parser, its tree checked against a whitelist (columns, literals,
comparisons, boolean logic, arithmetic, CASE and a list of deterministic scalar functions),
so subqueries, aggregates, lambdas, non-deterministic or side-effecting functions (``rand``,
``reflect``, ``java_method``...) are rejected with :class:`UnsafeExpressionError`; then
analysed against an empty DataFrame with the table's schema: it must be a deterministic
BOOLEAN that cannot build huge strings (``lpad(x, 2000000000, 'x')`` is refused).

Each expectation is evaluated with try semantics: a row whose evaluation raises under ANSI
(``CAST_INVALID_INPUT``, ``DIVIDE_BY_ZERO``, overflow) gets NULL, and NULL counts as a
failure, so such a row fails the expectation (and is quarantined by ``drop``) instead of
aborting the job.

Results (passed / failed counts per expectation and check) go into the run report
(:meth:`QualityReport.as_details`) and are appended to a quality-results Delta table by
:func:`write_quality_results`, so trends can be queried.

Examples
--------
>>> from lakehouse.config import Settings, TableQuality
>>> q = TableQuality.model_validate(
...     {"expectations": [{"name": "qty_positive", "expr": "qty > 0", "action": "drop"}]}
... )
>>> [e.name for e in q.expectations]
['qty_positive']
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config import Settings, TableQuality
from lakehouse.errors import LakehouseError
from lakehouse.quality.quarantine import to_quarantine
from lakehouse.spark.sql import (
    ALLOWED_FUNCTIONS,
    UnsafeExpressionError,
    delta_path_identifier,
    quote_identifier,
    validate_expression,
)
from lakehouse.writes.idempotency import txn_identity

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "ALLOWED_FUNCTIONS",
    "QUALITY_RESULTS_SCHEMA",
    "RESULTS_TABLE",
    "ExpectationEvaluationError",
    "ExpectationFailedError",
    "ExpectationResult",
    "QualityOutcome",
    "QualityReport",
    "SchemaDriftError",
    "UnsafeExpressionError",
    "apply_constraints",
    "apply_expectations",
    "apply_table_quality",
    "check_schema",
    "check_table",
    "existing_constraints",
    "validate_expression",
    "validate_quality",
    "write_quality_results",
]


class ExpectationFailedError(LakehouseError, RuntimeError):
    """A ``fail`` expectation or check did not hold; nothing was written."""


class ExpectationEvaluationError(LakehouseError, RuntimeError):
    """Evaluating a table's expectations failed as a whole (a row's own runtime error,
    such as CAST_INVALID_INPUT or DIVIDE_BY_ZERO, only fails that row); names them."""


class SchemaDriftError(LakehouseError, ValueError):
    """Landing data's columns differ from the table's and evolution is not enabled."""


# --------------------------------------------------------------------------- validation


def validate_quality(
    spark: SparkSession, quality: TableQuality | None, schema: T.StructType, *, table: str
) -> None:
    """Validate every expression and column of ``quality`` against ``schema`` (nothing runs).

    Call it at job start so a hostile or mistyped configuration stops the run before any
    data is read or written.
    """
    if quality is None:
        return
    columns = {f.name.lower() for f in schema.fields}
    for exp in quality.expectations:
        validate_expression(
            spark, exp.expr, schema, what=f"tables.{table}.quality.expectations.{exp.name}"
        )
    for name, expr in quality.checks.items():
        validate_expression(spark, expr, schema, what=f"tables.{table}.quality.checks.{name}")
    named: list[tuple[str, Sequence[str]]] = [
        ("unique_keys", quality.unique_keys),
        ("not_null", quality.not_null),
    ]
    if quality.freshness is not None:
        named.append(("freshness.column", [quality.freshness.column]))
    for key, cols in named:
        missing = [c for c in cols if c.lower() not in columns]
        if missing:
            raise UnsafeExpressionError(
                f"tables.{table}.quality.{key}: unknown columns {missing}; "
                f"table columns: {sorted(f.name for f in schema.fields)}"
            )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ExpectationResult:
    """Outcome of one expectation or table-level check."""

    table: str
    name: str
    kind: str  # "row", "row_count", "unique", "freshness"
    action: str
    passed: int
    failed: int
    detail: str = ""

    @property
    def status(self) -> str:
        if self.failed == 0:
            return "passed"
        return {"warn": "warned", "drop": "dropped", "fail": "failed"}[self.action]


@dataclass
class QualityReport:
    """All results of one table in one run."""

    table: str
    results: list[ExpectationResult] = field(default_factory=list)

    @property
    def failures(self) -> list[ExpectationResult]:
        return [r for r in self.results if r.action == "fail" and r.failed > 0]

    def raise_for_failures(self) -> None:
        """Raise :class:`ExpectationFailedError` listing every failed ``fail`` rule."""
        if self.failures:
            lines = [
                f"{r.name} ({r.kind}): {r.failed} failing, {r.passed} passing"
                + (f"; {r.detail}" if r.detail else "")
                for r in self.failures
            ]
            raise ExpectationFailedError(
                f"table {self.table}: data-quality expectations failed, nothing written:\n  "
                + "\n  ".join(lines)
            )

    def as_details(self) -> list[dict[str, Any]]:
        """JSON-friendly rows for ``JobResult.details['quality']``."""
        return [{**asdict(r), "status": r.status} for r in self.results]


@dataclass
class QualityOutcome:
    """Rows that pass (``accepted``), rows dropped into quarantine shape, and the report."""

    accepted: DataFrame
    quarantined: DataFrame
    report: QualityReport


def _try_expr(spark: SparkSession, expr: str) -> Column:
    """``expr`` with try semantics: a row whose evaluation raises gives NULL.

    Under ANSI (Spark 4's default) ``CAST('x' AS INT)``, ``1 / 0`` or an overflow inside an
    expectation raise and abort the whole job; wrapped in Catalyst's ``TryEval`` (what
    ``try_add`` and friends are built on) they give NULL for that row, so the row fails
    the expectation like any other it cannot be shown to pass. ANSI semantics stay on
    everywhere else (nothing is silently truncated or wrapped around)."""
    jvm = spark.sparkContext._jvm
    if jvm is None:  # pragma: no cover - a classic session always has a JVM
        raise RuntimeError("no JVM behind this SparkSession (Spark Connect is not supported)")
    parsed = spark._jsparkSession.sessionState().sqlParser().parseExpression(expr)
    guarded = jvm.org.apache.spark.sql.catalyst.expressions.TryEval(parsed)
    try:
        jcol = jvm.org.apache.spark.sql.classic.ExpressionUtils.column(guarded)  # Spark 4
    except (Py4JError, TypeError):  # Spark 3.5: no classic package; Column wraps expressions
        jcol = jvm.org.apache.spark.sql.Column(guarded)
    return Column(jcol)


def _flag(spark: SparkSession, expr: str) -> Column:
    # NULL counts as a failure: a rule that cannot be evaluated for a row does not pass.
    return F.coalesce(_try_expr(spark, expr).cast("boolean"), F.lit(False))


def apply_expectations(
    df: DataFrame,
    quality: TableQuality | None,
    *,
    table: str,
    stage: str,
    batch_id: str,
    source: Column | None = None,
    raise_on_fail: bool = True,
) -> QualityOutcome:
    """Evaluate the row expectations of ``quality`` over ``df`` (one aggregation pass).

    ``fail`` expectations raise :class:`ExpectationFailedError` (before any write, so the
    target is unchanged); ``drop`` expectations split failing rows off into the
    quarantine schema with reason ``expectation <name> failed: <expr>`` (several names joined
    with ``; ``); ``warn`` only counts. Expressions must have been checked with
    :func:`validate_quality` first.
    """
    report = QualityReport(table)
    exps = list(quality.expectations) if quality else []
    if not exps:
        empty = to_quarantine(
            df.limit(0), stage=stage, reason=F.lit(""), source=F.lit(table), batch_id=batch_id
        )
        return QualityOutcome(df, empty, report)
    flags = [f"__dq_{i}" for i in range(len(exps))]
    flagged = df.select(
        "*", *[_flag(df.sparkSession, e.expr).alias(f) for e, f in zip(exps, flags, strict=True)]
    )
    aggs = [F.count(F.lit(1)).alias("__n")] + [
        F.sum(F.when(F.col(f), 0).otherwise(1)).alias(f) for f in flags
    ]
    try:
        row = flagged.agg(*aggs).first()
    except PySparkException as exc:
        names = [e.name for e in exps]
        raise ExpectationEvaluationError(
            f"table {table}: evaluating expectations {names} failed: "
            f"{str(exc).strip().splitlines()[0]}"
        ) from exc
    total = int(row["__n"]) if row else 0
    for exp, f in zip(exps, flags, strict=True):
        failed = int(row[f] or 0) if row else 0
        report.results.append(
            ExpectationResult(table, exp.name, "row", exp.action, total - failed, failed, exp.expr)
        )
    if raise_on_fail:
        report.raise_for_failures()
    drop = [(e, f) for e, f in zip(exps, flags, strict=True) if e.action == "drop"]
    if drop:
        ok = F.lit(True)
        for _, f in drop:
            ok = ok & F.col(f)
        reasons = F.concat_ws(
            "; ",
            *[F.when(~F.col(f), F.lit(f"expectation {e.name} failed: {e.expr}")) for e, f in drop],
        )
        bad = flagged.filter(~ok)
        quarantined = to_quarantine(
            bad.select(
                *[F.col(quote_identifier(c)) for c in df.columns], reasons.alias("__dq_reason")
            ),
            stage=stage,
            reason=F.col("__dq_reason"),
            source=source if source is not None else F.lit(table),
            record=F.to_json(F.struct(*[F.col(quote_identifier(c)) for c in df.columns])),
            batch_id=batch_id,
        )
        accepted = flagged.filter(ok).select(*[F.col(quote_identifier(c)) for c in df.columns])
    else:
        accepted = df
        quarantined = to_quarantine(
            df.limit(0), stage=stage, reason=F.lit(""), source=F.lit(table), batch_id=batch_id
        )
    return QualityOutcome(accepted, quarantined, report)


def check_table(
    df: DataFrame,
    quality: TableQuality | None,
    *,
    table: str,
    now: dt.datetime | None = None,
    report: QualityReport | None = None,
    raise_on_fail: bool = True,
) -> QualityReport:
    """Run the table-level checks (row-count bounds, key uniqueness, freshness) over ``df``.

    Returns the report (appending to ``report`` when given) after raising
    :class:`ExpectationFailedError` for any failed check whose action is ``fail``.
    """
    report = report if report is not None else QualityReport(table)
    if quality is None:
        return report
    n: int | None = None
    if quality.row_count is not None:
        rc = quality.row_count
        n = df.count()
        ok = (rc.min is None or n >= rc.min) and (rc.max is None or n <= rc.max)
        report.results.append(
            ExpectationResult(
                table, "row_count", "row_count", rc.action, 1 if ok else 0, 0 if ok else 1,
                f"rows {n}; allowed [{rc.min if rc.min is not None else '-inf'}, "
                f"{rc.max if rc.max is not None else 'inf'}]",
            )
        )  # fmt: skip
    if quality.unique_keys:
        keys = [F.col(quote_identifier(k)) for k in quality.unique_keys]
        dup = df.groupBy(*keys).count().filter(F.col("count") > 1)
        stats = dup.agg(F.count(F.lit(1)).alias("k"), F.sum("count").alias("r")).first()
        dup_keys = int(stats["k"] or 0) if stats else 0
        n = n if n is not None else df.count()
        report.results.append(
            ExpectationResult(
                table, "unique_" + "_".join(quality.unique_keys), "unique", quality.unique_action,
                n - int((stats["r"] or 0) if stats else 0), int((stats["r"] or 0) if stats else 0),
                f"{dup_keys} duplicated keys over {quality.unique_keys}",
            )
        )  # fmt: skip
    if quality.freshness is not None:
        fr = quality.freshness
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        newest = df.agg(
            F.max(F.col(quote_identifier(fr.column)).cast("timestamp")).alias("m")
        ).first()
        latest = newest["m"] if newest else None
        limit = now - dt.timedelta(hours=fr.max_age_hours)
        ok = latest is not None and latest >= limit
        report.results.append(
            ExpectationResult(
                table, f"freshness_{fr.column}", "freshness", fr.action, 1 if ok else 0,
                0 if ok else 1,
                f"newest {fr.column} {latest}; must be >= {limit:%Y-%m-%d %H:%M:%S}",
            )
        )  # fmt: skip
    if raise_on_fail:
        report.raise_for_failures()
    return report


# --------------------------------------------------------------------------- one call

#: Name of the quality-results table in ``settings.tables`` (results are persisted when
#: it is configured).
RESULTS_TABLE = "quality_results"


def apply_table_quality(
    spark: SparkSession,
    settings: Settings,
    table: str,
    df: DataFrame,
    *,
    job: str,
    batch_id: str,
    stage: str | None = None,
) -> QualityOutcome:
    """Everything a job does for ``tables.<table>.quality`` before writing ``df`` to it.

    Validates the configuration against ``df``'s schema (nothing runs if it is hostile),
    evaluates the row expectations, runs the table-level checks on the rows about to be
    written, appends the results to the ``quality_results`` table when it is configured,
    and only then raises :class:`ExpectationFailedError` for failed ``fail`` rules, so the
    target stays unchanged but the failure is recorded. Without a ``quality`` block the
    rows pass through unchanged.
    """
    quality = settings.tables[table].quality
    if quality is None:
        return apply_expectations(df, None, table=table, stage=stage or job, batch_id=batch_id)
    validate_quality(spark, quality, df.schema, table=table)
    out = apply_expectations(
        df, quality, table=table, stage=stage or job, batch_id=batch_id, raise_on_fail=False
    )
    if not out.report.failures:
        check_table(out.accepted, quality, table=table, report=out.report, raise_on_fail=False)
    if RESULTS_TABLE in settings.tables:
        write_quality_results(
            spark, [out.report], settings.table_path(RESULTS_TABLE), job=job, batch_id=batch_id,
            step_key=table,
        )  # fmt: skip
    out.report.raise_for_failures()
    return out


# --------------------------------------------------------------------------- persistence

QUALITY_RESULTS_SCHEMA = T.StructType(
    [
        T.StructField("batch_id", T.StringType(), False),
        T.StructField("job", T.StringType(), False),
        T.StructField("table", T.StringType(), False),
        T.StructField("expectation", T.StringType(), False),
        T.StructField("kind", T.StringType(), False),
        T.StructField("action", T.StringType(), False),
        T.StructField("status", T.StringType(), False),
        T.StructField("passed", T.LongType(), False),
        T.StructField("failed", T.LongType(), False),
        T.StructField("detail", T.StringType(), True),
        T.StructField("checked_at", T.TimestampType(), False),
    ]
)


def write_quality_results(
    spark: SparkSession,
    reports: Sequence[QualityReport],
    path: str,
    *,
    job: str,
    batch_id: str,
    step_key: str = "",
) -> int:
    """Append the results to the quality-results Delta table at ``path``; return rows written.

    The append carries Delta's idempotent-write identity (job + batch id, and
    ``step_key`` when one job writes results for several tables), so writing the results
    of the same batch twice adds nothing.
    """
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    rows = [
        (
            batch_id,
            job,
            r.table,
            r.name,
            r.kind,
            r.action,
            r.status,
            r.passed,
            r.failed,
            r.detail,
            now,
        )
        for rep in reports
        for r in rep.results
    ]
    if not rows:
        return 0
    df = spark.createDataFrame(rows, QUALITY_RESULTS_SCHEMA)
    txn = txn_identity(
        job, batch_id, table=f"{RESULTS_TABLE}_{step_key}" if step_key else RESULTS_TABLE
    )
    txn.apply(df.write.format("delta").mode("append")).save(path)
    return len(rows)


# --------------------------------------------------------------------------- constraints


def existing_constraints(spark: SparkSession, path: str) -> dict[str, str]:
    """The CHECK constraints of the Delta table at ``path``: name (lower-case) -> SQL."""
    props = spark.sql(f"SHOW TBLPROPERTIES {delta_path_identifier(path)}").collect()
    prefix = "delta.constraints."
    return {r["key"][len(prefix) :]: r["value"] for r in props if r["key"].startswith(prefix)}


def apply_constraints(
    spark: SparkSession, path: str, quality: TableQuality | None, *, table: str
) -> list[str]:
    """Add the configured Delta constraints to the table at ``path``; return what was done.

    ``not_null: [c]`` becomes ``CONSTRAINT c_not_null CHECK (c IS NOT NULL)`` (Spark 4.1
    refuses ``ALTER COLUMN ... SET NOT NULL`` on an existing nullable Delta column, so the
    invariant is a CHECK constraint: same guarantee for every writer). ``checks`` are added
    under their names. Existing constraints with the same name and SQL are left alone; one
    with a different definition is dropped and re-added. Expressions are validated first
    and the *re-rendered* SQL from Spark's parser is what the statement embeds.
    """
    if quality is None or not (quality.not_null or quality.checks):
        return []
    schema = spark.read.format("delta").load(path).schema
    validate_quality(spark, quality, schema, table=table)
    wanted: dict[str, str] = {}
    for col in quality.not_null:
        wanted[f"{col}_not_null".lower()] = validate_expression(
            spark,
            f"{quote_identifier(col)} IS NOT NULL",
            schema,
            what=f"tables.{table}.quality.not_null",
        )
    for name, expr in quality.checks.items():
        wanted[name.lower()] = validate_expression(
            spark, expr, schema, what=f"tables.{table}.quality.checks.{name}"
        )
    have = existing_constraints(spark, path)
    ident = delta_path_identifier(path)
    done: list[str] = []
    for name, sql in wanted.items():
        if name in have:
            if _norm(have[name]) == _norm(sql):
                continue
            spark.sql(f"ALTER TABLE {ident} DROP CONSTRAINT {quote_identifier(name)}")
            done.append(f"dropped constraint {name} ({have[name]})")
        spark.sql(f"ALTER TABLE {ident} ADD CONSTRAINT {quote_identifier(name)} CHECK ({sql})")
        done.append(f"added constraint {name} CHECK ({sql})")
    return done


def _norm(sql: str) -> str:
    return "".join(sql.split()).lower().replace("`", "")


# --------------------------------------------------------------------------- schema drift


def check_schema(
    actual: T.StructType,
    expected: T.StructType,
    *,
    source: str,
    evolution: bool,
    ignore: Iterable[str] = (),
) -> list[str]:
    """Compare landing data's schema with the table's; raise on drift unless ``evolution``.

    Returns the list of differences (empty when identical). Column names compare
    case-insensitively, like Spark; columns in ``ignore`` (ingestion metadata) are skipped.

    Raises
    ------
    SchemaDriftError
        Listing extra columns, missing columns and changed types, and how to opt in.
    """
    skip = {c.lower() for c in ignore}
    act = {f.name.lower(): f for f in actual.fields if f.name.lower() not in skip}
    exp = {f.name.lower(): f for f in expected.fields if f.name.lower() not in skip}
    diffs: list[str] = []
    extra = [act[k].name for k in act if k not in exp]
    missing = [exp[k].name for k in exp if k not in act]
    if extra:
        diffs.append(f"extra columns {extra}")
    if missing:
        diffs.append(f"missing columns {missing}")
    for k in act.keys() & exp.keys():
        a, e = act[k].dataType, exp[k].dataType
        if a != e:
            diffs.append(
                f"column {exp[k].name!r} changed type {e.simpleString()} -> {a.simpleString()}"
            )
    if diffs and not evolution:
        raise SchemaDriftError(
            f"{source}: schema drift rejected: {'; '.join(sorted(diffs))}. Set "
            "schema_evolution: true on this source to accept it."
        )
    return diffs


def results_to_json(reports: Mapping[str, QualityReport]) -> str:
    """All reports as JSON (for logs)."""
    return json.dumps({k: v.as_details() for k, v in reports.items()}, default=str)
