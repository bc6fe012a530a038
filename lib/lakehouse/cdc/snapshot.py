"""Change data capture from full snapshots: :func:`apply_snapshot`.

Most operational databases are still extracted as full snapshots (our ``products.csv`` is
one). Given the whole table as of ``snapshot_at``, :func:`apply_snapshot` diffs it
against the rows in effect and applies the difference as change events at
``snapshot_at``: a new key or a changed value is an upsert, a key missing from the
snapshot is a delete. The events go through :func:`~lakehouse.cdc.apply_scd1` or
:func:`~lakehouse.cdc.apply_scd2`, so every rule of those (one MERGE, no commit when
nothing changed, the event log) holds.

Snapshots are applied in ascending ``snapshot_at``; one older than the latest sequence
the table (or its event log) holds is refused with :class:`SnapshotOrderError` and the
table is left as it is. A snapshot that changes nothing commits nothing, and so leaves no
trace for that check.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from lakehouse.cdc.scd1 import SCD1Spec, apply_scd1
from lakehouse.scd2.apply import apply_scd2
from lakehouse.scd2.columns import SEQ, any_of, qcol, same
from lakehouse.scd2.log import log_exists, log_ref
from lakehouse.scd2.spec import SCD2Error, SCD2Result, SCD2Spec, SCD2SpecError
from lakehouse.spark.delta import DeltaTableRef

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SnapshotOrderError", "apply_snapshot"]

_SNAP_DEL = "__snapshot_delete__"


class SnapshotOrderError(SCD2Error, ValueError):
    """A snapshot older than what the table already holds; the table was not changed."""


def apply_snapshot(
    spark: SparkSession,
    target: str,
    snapshot: DataFrame,
    spec: SCD1Spec | SCD2Spec,
    *,
    snapshot_at: Any,
    **options: Any,
) -> SCD2Result:
    """Apply the full snapshot ``snapshot`` (keys and attributes) taken at ``snapshot_at``
    to the SCD1 or SCD2 table ``target``.

    ``snapshot_at`` fills the spec's ``sequence_by`` column of every event (a value of its
    type: a datetime for a timestamp, an int for a number). ``options`` are passed to
    :func:`~lakehouse.cdc.apply_scd1` / :func:`~lakehouse.cdc.apply_scd2`. The result's
    metrics add ``snapshot_changed`` (upserts the diff found) and ``snapshot_deleted``
    (keys missing from the snapshot that were in effect).

    Raises
    ------
    SnapshotOrderError
        ``snapshot_at`` is older than the latest sequence the table holds.
    SCD2SpecError
        The snapshot has the sequence column, or lacks a key.

    Examples
    --------
    >>> spec = SCD2Spec(keys=["product_id"], sequence_by="snapshot_at")
    >>> apply_snapshot(spark, path, catalogue, spec, snapshot_at=day)  # doctest: +SKIP
    """
    missing = [k for k in spec.keys if k not in snapshot.columns]
    if missing or spec.sequence_by in snapshot.columns:
        raise SCD2SpecError(
            f"apply_snapshot: the snapshot needs the key column(s) {list(spec.keys)} and must "
            f"not have the sequence column {spec.sequence_by!r} (snapshot_at fills it); "
            f"it has {snapshot.columns}"
        )
    table = DeltaTableRef.parse(spark, target)
    version = table.version()  # None: no table yet
    seq = F.lit(snapshot_at)
    if version is not None:
        # Pinned to the version read: the diff is cached, and the MERGE's commit makes Spark
        # re-cache what reads the table's path. Unpinned, the diff would then be recomputed
        # against the merged table, where the deleted keys are gone, and their tombstones
        # would never reach the event log.
        current = table.read(version)
        _check_order(table, current, spec, snapshot_at)
        seq = seq.cast(current.schema[_seq_column(spec)].dataType)
        in_effect = current.where(qcol(spec.is_current)) if isinstance(spec, SCD2Spec) else current
        diff = _diff(snapshot, in_effect, tuple(spec.keys))
    else:
        diff = snapshot.withColumn(_SNAP_DEL, F.lit(False))
    diff = diff.withColumn(spec.sequence_by, seq).persist()
    try:
        counts = diff.agg(
            F.sum((~F.col(_SNAP_DEL)).cast("int")).alias("changed"),
            F.sum(F.col(_SNAP_DEL).cast("int")).alias("deleted"),
        ).first()
        changed, deleted = (int((counts[c] if counts else 0) or 0) for c in ("changed", "deleted"))
        as_events = _events_spec(spec)
        if isinstance(as_events, SCD1Spec):
            result = apply_scd1(spark, target, diff, as_events, **options)
        else:
            result = apply_scd2(spark, target, diff, as_events, **options)
        metrics = {**result.metrics, "snapshot_changed": changed, "snapshot_deleted": deleted}
        return dataclasses.replace(result, metrics=metrics)
    finally:
        diff.unpersist()


def _seq_column(spec: SCD1Spec | SCD2Spec) -> str:
    """The target column holding event sequences (``valid_from`` for SCD2)."""
    return spec.valid_from if isinstance(spec, SCD2Spec) else spec.sequence_by


def _check_order(
    table: DeltaTableRef, current: DataFrame, spec: SCD1Spec | SCD2Spec, snapshot_at: Any
) -> None:
    """Refuse a snapshot older than the latest sequence of the table or its event log.

    It asks each for a row later than ``snapshot_at`` (:func:`_later_rows`). When snapshots
    come in order, every data file's maximum is older, so Delta's data skipping answers
    from file statistics without reading a file (a plain ``MAX`` of a timestamp column
    reads every row). Only a refused snapshot reads the latest value, for the message.
    """
    cols = [spec.valid_from, spec.valid_to] if isinstance(spec, SCD2Spec) else [spec.sequence_by]
    sources = [(current, cols)]
    log = log_ref(table)
    if log_exists(log):
        sources.append((log.read(), [SEQ]))
    for df, names in sources:
        if _later_rows(df, names, snapshot_at).limit(1).count():
            row = df.agg(*[F.max(qcol(c)) for c in names]).first()
            latest = max(v for v in (row or ()) if v is not None)
            raise SnapshotOrderError(
                f"apply_snapshot into {table.location}: snapshot_at {snapshot_at!r} is older "
                f"than {latest!r}, the latest sequence the table holds; snapshots are applied "
                "in ascending snapshot_at, and the table was not changed"
            )


def _later_rows(df: DataFrame, columns: list[str], snapshot_at: Any) -> DataFrame:
    """The rows of ``df`` with a value in ``columns`` later than ``snapshot_at`` (cast to
    the first column's type, as the snapshot's events carry it)."""
    at = F.lit(snapshot_at).cast(df.schema[columns[0]].dataType)
    return df.where(any_of([qcol(c) > at for c in columns]))


def _diff(snapshot: DataFrame, in_effect: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """Snapshot rows that are new or changed (delete flag false) and keys in effect that
    the snapshot lacks (delete flag true, attributes NULL), in one full outer join."""
    attrs = [c for c in snapshot.columns if c not in keys]
    have = set(in_effect.columns)
    current = in_effect.select(
        *[qcol(k) for k in keys],
        *[(qcol(a) if a in have else F.lit(None)).alias(f"__c{i}") for i, a in enumerate(attrs)],
        F.lit(True).alias("__in_effect"),
    )
    joined = snapshot.withColumn("__in_snapshot", F.lit(True)).join(
        current, list(keys), "full_outer"
    )
    in_snapshot = F.col("__in_snapshot").isNotNull()
    differs = any_of([~same(qcol(a), F.col(f"__c{i}")) for i, a in enumerate(attrs)])
    return joined.where(~in_snapshot | F.col("__in_effect").isNull() | differs).select(
        *[qcol(k) for k in keys],
        *[F.when(in_snapshot, qcol(a)).alias(a) for a in attrs],
        (~in_snapshot).alias(_SNAP_DEL),
    )


def _events_spec(spec: SCD1Spec | SCD2Spec) -> SCD1Spec | SCD2Spec:
    """The spec the diff's events are applied with: deletes are the diff's flag."""
    excluded = (*spec.except_columns, _SNAP_DEL) if spec.except_columns is not None else None
    if isinstance(spec, SCD1Spec):
        return dataclasses.replace(
            spec, delete_when=_SNAP_DEL, truncate_when=None, except_columns=excluded
        )
    return dataclasses.replace(spec, delete_when=_SNAP_DEL, except_columns=excluded)
