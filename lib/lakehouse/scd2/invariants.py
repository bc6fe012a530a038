"""Reading and checking SCD2 tables: the versions in effect at a point
(:func:`read_as_of`) and the invariants every SCD2 table must keep
(:func:`check_scd2_invariants`), on any table, whoever wrote it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, Window
from pyspark.sql import functions as F

from lakehouse.scd2.columns import all_of, any_of, qcol, same
from lakehouse.scd2.spec import SCD2InvariantError, SCD2Spec
from lakehouse.spark.delta import DeltaTableRef

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SCD2InvariantReport", "check_scd2_invariants", "read_as_of"]


@dataclass(frozen=True)
class SCD2InvariantReport:
    """Violations found by :func:`check_scd2_invariants`, as counts of offending rows."""

    violations: Mapping[str, int]
    rows: int

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())


def read_as_of(spark: SparkSession, target: str, spec: SCD2Spec, as_of: Any) -> DataFrame:
    """The versions in effect at sequence value ``as_of`` (one row per live key).

    Examples
    --------
    >>> read_as_of(spark, path, spec, datetime(2024, 1, 2))  # doctest: +SKIP
    """
    df = DeltaTableRef.parse(spark, target).read()
    at = as_of if isinstance(as_of, Column) else F.lit(as_of)
    vf, vt = qcol(spec.valid_from), qcol(spec.valid_to)
    return df.where((vf <= at) & (vt.isNull() | (vt > at)))


def check_scd2_invariants(
    spark: SparkSession, target: str, spec: SCD2Spec, *, raise_: bool = False
) -> SCD2InvariantReport:
    """Check the SCD2 invariants on any table and count the offending rows.

    Checked: ``null_key_or_valid_from``, ``duplicate_valid_from``,
    ``current_flag_mismatch`` (``is_current`` ⇔ ``valid_to IS NULL``),
    ``empty_or_inverted_interval`` (``valid_to <= valid_from``), ``overlap`` (a version
    starts before the previous one ends), ``multiple_current`` (keys with more than one
    current row) and ``uncoalesced`` (a version directly continuing the previous one with
    identical tracked values).

    Examples
    --------
    >>> report = check_scd2_invariants(spark, path, spec)  # doctest: +SKIP
    >>> report.ok  # doctest: +SKIP
    True
    """
    df = DeltaTableRef.parse(spark, target).read()
    keys = [qcol(k) for k in spec.keys]
    vf, vt, ic = qcol(spec.valid_from), qcol(spec.valid_to), qcol(spec.is_current)
    meta = {*spec.keys, *spec.meta_columns}
    tracked = (
        list(spec.track) if spec.track is not None else [c for c in df.columns if c not in meta]
    )
    w = Window.partitionBy(*keys).orderBy(vf)
    prev_vf = F.lag(vf).over(w)
    prev_vt = F.lag(vt).over(w)
    has_prev = F.lag(F.lit(1)).over(w).isNotNull()
    same_tracked = all_of([same(qcol(t), F.lag(qcol(t)).over(w)) for t in tracked])
    currents = F.sum(F.when(ic, 1).otherwise(0)).over(Window.partitionBy(*keys))
    checks = {
        "null_key_or_valid_from": any_of([k.isNull() for k in keys]) | vf.isNull(),
        "duplicate_valid_from": has_prev & (prev_vf == vf),
        "current_flag_mismatch": ~same(ic, vt.isNull()),
        "empty_or_inverted_interval": vt.isNotNull() & (vt <= vf),
        "overlap": has_prev & (prev_vt.isNull() | (prev_vt > vf)),
        "multiple_current": ic & (currents > 1),
        "uncoalesced": has_prev & (prev_vt == vf) & same_tracked,
    }
    flagged = df.select(*[F.coalesce(c, F.lit(False)).alias(n) for n, c in checks.items()])
    row = flagged.agg(
        F.count(F.lit(1)).alias("__rows"),
        *[F.sum(F.col(n).cast("int")).alias(n) for n in checks],
    ).first()
    violations = {n: int(row[n] or 0) if row is not None else 0 for n in checks}
    report = SCD2InvariantReport(
        violations=violations, rows=int(row["__rows"]) if row is not None else 0
    )
    if raise_ and not report.ok:
        bad = {k: v for k, v in violations.items() if v}
        raise SCD2InvariantError(f"SCD2 invariants violated in {target}: {bad} (row counts)")
    return report
