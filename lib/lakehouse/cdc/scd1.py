"""SCD type 1 with the SCD2 engine's ordering guarantees: :func:`apply_scd1`.

An SCD1 table holds one live row per key: the key's latest upsert (by sequence), unless a
delete or a truncate at a later sequence removed it. The row keeps the sequence value of
the event that wrote it (the ``sequence_by`` column), so

* an out-of-order older event never overwrites a newer one;
* deletes and truncates are remembered in the table's event log
  (:mod:`lakehouse.scd2.log`), so an upsert older than a delete stays deleted, whichever
  batch each arrives in;
* different events at one (key, sequence) are a conflict (fail before writing, or
  quarantine), exact duplicates are dropped, and a replay commits nothing;
* a batch is one MERGE (plus an append to the event log when it brings deletes).

Examples
--------
>>> SCD1Spec(keys="id", sequence_by="seq", delete_when="op = 'D'").keys
('id',)
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.scd2.apply import check_call, conflict_error, with_retries
from lakehouse.scd2.batch import BROADCAST_KEYS, Touched, batch_stats, keyed_events, prepare_feed
from lakehouse.scd2.columns import DEL, SEQ, all_of, any_of, qcol, same
from lakehouse.scd2.log import (
    append_events,
    expire_events,
    log_exists,
    log_ref,
    logged_events,
)
from lakehouse.scd2.merge import default_merge_conf
from lakehouse.scd2.schema import Layout, resolve_layout
from lakehouse.scd2.spec import (
    DEFAULT_TOMBSTONE_RETENTION,
    ConflictPolicy,
    SCD2Result,
    SCD2Spec,
    SCD2SpecError,
    normalize_spec,
)
from lakehouse.spark.delta import DeltaTableRef
from lakehouse.spark.session import session_conf
from lakehouse.spark.sql import validate_identifier
from lakehouse.writes.retry import RetryPolicy

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakehouse.writes.idempotency import TxnIdentity

__all__ = ["SCD1Spec", "apply_scd1"]

# The version columns of the SCD2 twin a call resolves its columns with (never stored).
_VF, _VT, _IC = "__scd1_valid_from__", "__scd1_valid_to__", "__scd1_is_current__"
_TRUNC = "__scd1_truncate__"
_SRC = "__scd1_src__"  # 0: the stored row, 2: a logged delete, 3: a new event
#: Counts taken over (key, sequence) pairs, summed per key by :func:`_seq_count_aggs`.
_SEQ_COUNTS = ("conflicts", "logged", "tombstones", "ignored_null_updates")


@dataclass(frozen=True)
class SCD1Spec:
    """What an SCD1 table is keyed and ordered by.

    Parameters
    ----------
    keys
        Business-key columns (one or more).
    sequence_by
        Column that orders events; stored in the table as the sequence of the event that
        wrote the row (it is how a later batch knows whether its event is newer).
    delete_when
        SQL boolean expression marking deletes (AUTO CDC: ``apply_as_deletes``).
    truncate_when
        SQL boolean expression marking truncates (AUTO CDC: ``apply_as_truncates``): a
        truncate at sequence ``s`` deletes every key whose row is older than ``s``, and an
        upsert older than ``s`` arriving later stays deleted (one at ``s`` survives it, in
        whichever batch it arrives). Its key columns may be NULL.
    except_columns
        Change-feed columns never stored (AUTO CDC: ``except_column_list``). ``None``:
        the columns only ``delete_when`` / ``truncate_when`` reference. The sequence
        column cannot be excepted.
    ignore_null_updates
        Partial updates (AUTO CDC: ``ignore_null_updates``): a NULL attribute in an upsert
        keeps the value in effect; each column holds its latest non-NULL value since the
        key's latest delete, whichever batch each event arrives in (every upsert is then
        kept in the event log, which is how a late one finds its place).
    tombstone_retention
        How long the event log keeps deletes and truncates (see
        :class:`~lakehouse.scd2.SCD2Spec`); ``None`` keeps them forever. Default 2 days.
    """

    keys: Sequence[str]
    sequence_by: str
    delete_when: str | None = None
    truncate_when: str | None = None
    except_columns: Sequence[str] | None = None
    ignore_null_updates: bool = False
    tombstone_retention: timedelta | None = DEFAULT_TOMBSTONE_RETENTION

    def __post_init__(self) -> None:
        keys = normalize_spec(self, ("except_columns",))
        for name in (*keys, self.sequence_by):
            validate_identifier(name)
        if self.sequence_by in keys or len(set(keys)) != len(keys):
            raise SCD2SpecError(
                f"SCD1Spec: keys and sequence_by must be distinct, found keys={list(keys)}, "
                f"sequence_by={self.sequence_by!r}"
            )
        if self.sequence_by in (self.except_columns or ()):
            raise SCD2SpecError(
                f"SCD1Spec.except_columns: the sequence column {self.sequence_by!r} is stored "
                "in an SCD1 table (it is how later batches order against it)"
            )

    def twin(self) -> SCD2Spec:
        """The SCD2 spec whose column resolution this table shares: the sequence plays
        ``valid_from``, and ``delete_when`` covers truncates too (for the columns it
        excludes)."""
        marks = [f"({c})" for c in (self.delete_when, self.truncate_when) if c]
        return SCD2Spec(
            keys=self.keys,
            sequence_by=self.sequence_by,
            delete_when=" OR ".join(marks) or None,
            valid_from=_VF,
            valid_to=_VT,
            is_current=_IC,
            except_columns=self.except_columns,
            tombstone_retention=self.tombstone_retention,
        )


def apply_scd1(
    spark: SparkSession,
    target: str,
    changes: DataFrame,
    spec: SCD1Spec,
    *,
    on_conflict: ConflictPolicy = "fail",
    retry: RetryPolicy | None = None,
    reason_column: str = "reason",
    txn: TxnIdentity | None = None,
) -> SCD2Result:
    """Apply a batch of change events to the SCD1 Delta table ``target`` (a path or a
    table name; created if missing).

    ``on_conflict``, ``retry``, ``reason_column`` and ``txn`` work as in
    :func:`~lakehouse.scd2.apply_scd2`.

    ``metrics`` keys: ``rows``, ``events``, ``duplicates``, ``conflicts``,
    ``quarantined`` (as in SCD2), ``touched_keys``, ``inserted`` (rows added),
    ``updated`` (rows rewritten by a newer upsert), ``deleted`` (rows removed by deletes
    and truncates), ``unchanged`` (touched keys whose row this batch left as it was),
    ``late`` (new events older than the key's stored row or latest delete),
    ``tombstoned`` (deletes and truncates the event log gained), ``truncated`` (1 if a
    truncate newer than every earlier one was applied), ``committed``,
    ``already_committed`` and ``retries``.

    Raises
    ------
    SCD2SpecError, SCD2SchemaError, SCD2ConflictError
        As :func:`~lakehouse.scd2.apply_scd2`; nothing is written.
    """
    check_call(changes, on_conflict, reason_column)
    table = DeltaTableRef.parse(spark, target)
    return with_retries(
        lambda: _apply_once(spark, table, changes, spec, on_conflict, reason_column, txn),
        retry,
        f"apply_scd1 into {target}",
    )


def _versions_schema(target: T.StructType, spec: SCD1Spec) -> T.StructType:
    """The SCD1 target's schema as its SCD2 twin would have it."""
    seq_type = target[spec.sequence_by].dataType
    fields = [f for f in target.fields if f.name != spec.sequence_by]
    return T.StructType(
        [
            *fields,
            T.StructField(_VF, seq_type),
            T.StructField(_VT, seq_type),
            T.StructField(_IC, T.BooleanType()),
        ]
    )


@dataclass(frozen=True)
class _Feed:
    prepared: DataFrame
    keyed: DataFrame
    rows: int
    n_bad: int
    n_truncates: int
    truncate_at: Any
    touched: Touched


def _prepare(changes: DataFrame, spec: SCD1Spec, lay: Layout, reason: str) -> _Feed:
    twin = spec.twin()
    prepared = prepare_feed(changes, twin, lay, reason)
    trunc = (
        F.coalesce(F.expr(spec.truncate_when), F.lit(False)) if spec.truncate_when else F.lit(False)
    )
    is_del = (
        F.coalesce(F.expr(spec.delete_when), F.lit(False)) if spec.delete_when else F.lit(False)
    )
    seq = qcol(lay.seq)
    prepared = (
        prepared.withColumn(_TRUNC, trunc)
        .withColumn(DEL, is_del & ~F.col(_TRUNC))
        .withColumn(
            reason,
            F.when(
                F.col(_TRUNC),
                F.when(seq.isNull(), F.lit(f"null sequence: {lay.seq}")).otherwise(F.lit("")),
            ).otherwise(F.col(reason)),
        )
        .persist()
    )
    row = prepared.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum((F.col(reason) != "").cast("int")).alias("bad"),
        F.sum((F.col(_TRUNC) & (F.col(reason) == "")).cast("int")).alias("n_trunc"),
        F.max(F.when(F.col(_TRUNC) & (F.col(reason) == ""), seq)).alias("trunc"),
    ).first()
    assert row is not None  # a global aggregate always returns one row
    rows, bad, n_trunc = (int(row[c] or 0) for c in ("rows", "bad", "n_trunc"))
    events = prepared.where(~F.col(_TRUNC))
    _, _, touched = batch_stats(events, lay.keys, reason, 1000)
    keyed = keyed_events(events.where(F.col(reason) == ""), lay).dropDuplicates()
    return _Feed(prepared, keyed, rows, bad, n_trunc, row["trunc"], touched)


def _apply_once(
    spark: SparkSession,
    table: DeltaTableRef,
    changes: DataFrame,
    spec: SCD1Spec,
    on_conflict: ConflictPolicy,
    reason: str,
    txn: TxnIdentity | None,
) -> SCD2Result:
    exists = table.exists()
    log = log_ref(table)
    version = table.version() if exists else None
    target_df = table.read(version) if exists else None
    lay = resolve_layout(
        changes,
        spec.twin(),
        _versions_schema(target_df.schema, spec) if target_df is not None else None,
        table.properties if exists else dict,
    )
    feed = _prepare(changes, spec, lay, reason)
    try:
        seq_type = feed.keyed.schema[SEQ].dataType
        logged = logged_events(log, feed.keyed, feed.touched, lay) if exists else None
        events = _events(feed, target_df, logged, lay, spec, seq_type)
        truncated_before = _last_truncate(log, lay) if exists and spec.truncate_when else None
        truncate_at = _newer(feed.truncate_at, truncated_before)
        quarantine = feed.prepared.where(F.col(reason) != "").drop(DEL, _TRUNC)
        partial = spec.ignore_null_updates
        per_seq, keys_df, counts = _resolve(events, lay, truncate_at, partial)
        conflicts = per_seq.where(F.col("__conflict")).select(*lay.keys, SEQ)
        n_conflict_rows = 0
        if counts["conflicts"]:
            if on_conflict == "fail":
                error = conflict_error(conflicts, lay)
                keys_df.unpersist()
                per_seq.unpersist()
                raise error
            rejected = (
                feed.prepared.where((F.col(reason) == "") & ~F.col(_TRUNC))
                .withColumn(SEQ, qcol(lay.seq))
                .join(conflicts, [*lay.keys, SEQ], "left_semi")
                .drop(SEQ, DEL, _TRUNC)
                .withColumn(reason, F.lit("conflict: different events share key and sequence"))
            )
            n_conflict_rows = rejected.count()
            quarantine = quarantine.unionByName(rejected)
            events = events.join(
                conflicts.withColumn(_SRC, F.lit(3)), [*lay.keys, SEQ, _SRC], "left_anti"
            )
            keys_df.unpersist()
            per_seq.unpersist()
            per_seq, keys_df, counts = _resolve(events, lay, truncate_at, partial)
        seq_counts = {k: counts.pop(k) for k in _SEQ_COUNTS}
        source = _source(keys_df, lay, spec, partial)
        n_writes = counts["inserted"] + counts["updated"] + counts["deleted"]
        new_truncate = truncate_at is not None and truncate_at != truncated_before
        with txn.session(spark) if txn is not None else nullcontext():
            if not exists:
                ordered = [c for c in changes.columns if c in (*lay.keys, *lay.attrs, lay.seq)]
                table.create(source.where(qcol(lay.seq).isNotNull()).select(*ordered))
            elif n_writes or new_truncate:
                _merge(
                    table,
                    source,
                    lay,
                    spec,
                    feed.touched,
                    truncate_at if new_truncate else None,
                    deletes=bool(counts["deleted"]),
                )
        if new_truncate and exists:
            counts["deleted"] = int(table.last_operation_metrics().get("numTargetRowsDeleted", 0))
        n_tombs = seq_counts["tombstones"] + int(new_truncate)
        if seq_counts["logged"] or new_truncate:
            to_log = _log_rows(per_seq, lay, partial)
            if new_truncate:
                to_log = to_log.unionByName(_truncate_row(to_log, lay, truncate_at, seq_type))
            append_events(log, to_log)
            expire_events(log, spec.tombstone_retention)  # the log grows only here
        new_version = table.version()
        attempted = not exists or bool(n_writes) or new_truncate
        committed = attempted and new_version != version
        events_n = counts.pop("events")
        metrics = {
            "rows": feed.rows,
            "events": events_n,
            "duplicates": feed.rows - feed.n_bad - n_conflict_rows - events_n - feed.n_truncates,
            "conflicts": n_conflict_rows,
            "quarantined": feed.n_bad + n_conflict_rows,
            **counts,
            "tombstoned": n_tombs,
            "truncated": int(new_truncate),
            "ignored_null_updates": seq_counts["ignored_null_updates"],
            "committed": int(committed),
            "already_committed": int(attempted and not committed),
        }
        keys_df.unpersist()
        per_seq.unpersist()
        return SCD2Result(metrics, quarantine, new_version, committed, lay.new_columns)
    finally:
        feed.prepared.unpersist()


def _newer(a: Any, b: Any) -> Any:
    """The later of two sequence values, either of which may be None."""
    if a is None or b is None:
        return b if a is None else a
    return max(a, b)


def _events(
    feed: _Feed,
    target_df: DataFrame | None,
    logged: DataFrame | None,
    lay: Layout,
    spec: SCD1Spec,
    seq_type: T.DataType,
) -> DataFrame:
    """New events (3), the touched keys' stored rows as events (0) and logged events (2)."""
    parts = [feed.keyed.withColumn(_SRC, F.lit(3))]
    if target_df is not None and feed.touched.count:
        touched_keys = feed.keyed.select(*[qcol(k) for k in lay.keys])
        if feed.touched.count <= BROADCAST_KEYS:
            touched_keys = F.broadcast(touched_keys)
        have = set(target_df.columns)
        stored = target_df.where(feed.touched.predicate(None)).join(
            touched_keys, list(lay.keys), "left_semi"
        )
        types = {f.name: f.dataType for f in feed.keyed.schema.fields}
        parts.append(
            stored.select(
                *[qcol(k) for k in lay.keys],
                qcol(spec.sequence_by).cast(seq_type).alias(SEQ),
                F.lit(False).alias(DEL),
                *[
                    (qcol(a) if a in have else F.lit(None)).cast(types[a]).alias(a)
                    for a in lay.attrs
                ],
                F.lit(0).alias(_SRC),
            )
        )
    if logged is not None:
        parts.append(logged.withColumn(_SRC, F.lit(2)))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _per_seq(events: DataFrame, lay: Layout, partial: bool) -> DataFrame:
    """One row per (key, sequence): the event there (``__ev``: a new or logged one, else the
    stored row), whether a new event conflicts with another one there, and what arrived.

    Without ``partial`` a new event also conflicts with a different stored row at its
    sequence. With it the stored row holds resolved values, not the event as it arrived
    (which the log holds), so new events are compared with logged ones only."""
    ev = F.struct(F.col(DEL), *[qcol(a) for a in lay.attrs])
    src = F.col(_SRC)
    arrived = F.when(src != 0, ev)
    out = events.groupBy(*[qcol(k) for k in lay.keys], F.col(SEQ)).agg(
        F.min(arrived).alias("__lo"),
        F.max(arrived).alias("__hi"),
        F.max(F.when(src == 0, ev)).alias("__st"),
        F.max((src == 3).cast("int")).alias("__new"),
        F.max((src == 0).cast("int")).alias("__row"),
        F.max((src == 2).cast("int")).alias("__logged"),
    )
    lo, st = F.col("__lo"), F.col("__st")
    differ = ~same(lo, F.col("__hi"))
    if not partial:
        differ = differ | (st.isNotNull() & ~same(st, lo))
    return out.withColumns(
        {
            "__ev": F.coalesce(lo, st),
            "__conflict": F.coalesce((F.col("__new") == 1) & differ, F.lit(False)),
        }
    )


def _resolve(
    events: DataFrame, lay: Layout, truncate_at: Any, partial: bool
) -> tuple[DataFrame, DataFrame, dict[str, int]]:
    """:func:`_per_seq` and :func:`_per_key` of ``events``, both persisted, and every count
    of the call in one job over the keys (:func:`_counts`)."""
    per_seq = _per_seq(events, lay, partial).persist()
    keys_df = _per_key(per_seq, lay, truncate_at, partial).persist()
    return per_seq, keys_df, _counts(keys_df)


def _last_truncate(log: DeltaTableRef, lay: Layout) -> Any:
    """The latest truncate the log remembers (a delete with every key NULL), or None."""
    if not log_exists(log):
        return None
    row = (
        log.read()
        .where(all_of([qcol(k).isNull() for k in lay.keys]) & F.col(DEL))
        .agg(F.max(SEQ).alias("t"))
        .first()
    )
    return None if row is None else row["t"]


def _per_key(per_seq: DataFrame, lay: Layout, truncate_at: Any, partial: bool) -> DataFrame:
    """One row per touched key: the latest upsert (``__u``; a stored row wins a tie, so a
    replay writes nothing), the latest delete, the values to store (``__v*``) and what the
    MERGE must do (``__act``).

    With ``partial`` each value is the column's latest non-NULL value after the latest
    delete or truncate, and the row is rewritten when any of them, or the latest upsert's
    sequence, differs from what is stored."""
    e = F.col("__ev")
    is_del = e[DEL]
    new_only = (F.col("__new") == 1) & (F.col("__row") == 0) & (F.col("__logged") == 0)
    upsert = F.struct(F.col(SEQ).alias("s"), (F.col("__row") == 0).alias("n"), e.alias("e"))
    aggs = [
        F.max(F.when(~is_del, upsert)).alias("__u"),
        F.max(F.when(is_del, F.col(SEQ))).alias("__d"),
        F.max(F.when(F.col("__row") == 1, F.col(SEQ))).alias("__r"),
        F.max(F.when(~new_only, F.col(SEQ))).alias("__old"),
        F.collect_list(F.when(new_only, F.col(SEQ))).alias("__fresh"),
        F.sum("__new").alias("__events"),
        *_seq_count_aggs(lay, partial),
    ]
    if partial:
        raw = F.col("__lo")  # the event as it arrived (new or logged), if any
        aggs.append(F.max(F.col("__st")).alias("__stored"))
        for i, a in enumerate(lay.attrs):
            sets = raw.isNotNull() & ~raw[DEL] & raw[a].isNotNull()
            aggs += [
                F.max(
                    F.when(
                        sets,
                        F.struct(F.col(SEQ).alias("s"), F.lit(1).alias("p"), raw[a].alias("v")),
                    )
                ).alias(f"__c{i}"),
                F.min(F.when(sets, F.col(SEQ))).alias(f"__m{i}"),
            ]
    per_key = per_seq.groupBy(*[qcol(k) for k in lay.keys]).agg(*aggs)

    def survives(seq: Column) -> Column:
        """A value set at ``seq`` outlives the key's latest delete (later than it) and the
        latest truncate (not older than it: a truncate deletes rows older than itself,
        as its MERGE clause does for keys the batch does not touch)."""
        ok = F.col("__d").isNull() | (seq > F.col("__d"))
        return ok & (seq >= F.lit(truncate_at)) if truncate_at is not None else ok

    u = F.col("__u")
    live = u.isNotNull() & survives(u["s"])
    has_row = F.col("__r").isNotNull()
    if partial:
        stored = F.col("__stored")
        values = {}
        for i, a in enumerate(lay.attrs):
            # The stored row's value stands for the events before it when no event still
            # known (logged or new) set the column at or before the row: those expired.
            base = F.when(
                F.col(f"__m{i}").isNull() | (F.col(f"__m{i}") > F.col("__r")),
                F.when(
                    stored[a].isNotNull(),
                    F.struct(F.col("__r").alias("s"), F.lit(0).alias("p"), stored[a].alias("v")),
                ),
            )
            best = F.greatest(F.col(f"__c{i}"), base)
            values[f"__v{i}"] = F.when(survives(best["s"]), best["v"])
        rewrite = ~has_row | (u["s"] != F.col("__r"))
        for i, a in enumerate(lay.attrs):
            rewrite = rewrite | ~same(values[f"__v{i}"], stored[a])
    else:
        values = {f"__v{i}": u["e"][a] for i, a in enumerate(lay.attrs)}
        rewrite = u["n"]
    late_at = (
        F.greatest(F.col("__old"), F.lit(truncate_at))
        if truncate_at is not None
        else F.col("__old")
    )
    return (
        per_key.withColumns(values)
        .withColumns(
            {
                "__act": F.when(live & rewrite, F.lit("upsert")).when(
                    ~live & has_row, F.lit("delete")
                ),
                "__has_row": has_row,
                "__late": F.size(F.filter(F.col("__fresh"), lambda s: s < late_at)),
            }
        )
        .where(F.col("__events") > 0)
    )


def _counts(per_key: DataFrame) -> dict[str, int]:
    act = F.col("__act")

    def n(cond: Column) -> Column:
        return F.sum(cond.cast("int"))

    row = per_key.agg(
        F.count(F.lit(1)).alias("touched_keys"),
        F.sum("__events").alias("events"),
        n((act == "upsert") & ~F.col("__has_row")).alias("inserted"),
        n((act == "upsert") & F.col("__has_row")).alias("updated"),
        n(act == "delete").alias("deleted"),
        n(act.isNull()).alias("unchanged"),
        F.sum("__late").alias("late"),
        *[F.sum(f"__n_{c}").alias(c) for c in _SEQ_COUNTS],
    ).first()
    return {k: int(v or 0) for k, v in (row.asDict() if row else {}).items()}


def _source(per_key: DataFrame, lay: Layout, spec: SCD1Spec, partial: bool) -> DataFrame:
    """MERGE rows in the target's shape; a delete carries a NULL sequence."""
    u = F.col("__u")
    return per_key.where(F.col("__act").isNotNull()).select(
        *[qcol(k) for k in lay.keys],
        *[F.col(f"__v{i}").alias(a) for i, a in enumerate(lay.attrs)],
        F.when(F.col("__act") == "upsert", u["s"]).alias(spec.sequence_by),
    )


def _merge(
    table: DeltaTableRef,
    source: DataFrame,
    lay: Layout,
    spec: SCD1Spec,
    touched: Touched,
    truncate_at: Any,
    *,
    deletes: bool,
) -> None:
    """One MERGE on the keys: a source row with a NULL sequence deletes its match (a clause
    added only when the batch deletes rows), any other updates or inserts; with
    ``truncate_at``, rows the source does not match that are older than it are deleted.
    It runs with :func:`~lakehouse.scd2.merge.default_merge_conf`, as SCD2's MERGE does."""
    seq_s, seq_t = qcol(spec.sequence_by, "s"), qcol(spec.sequence_by, "t")
    cond = all_of([qcol(k, "t") == qcol(k, "s") for k in lay.keys]) & touched.predicate("t")
    builder = table.delta_table().alias("t").merge(source.alias("s"), cond)
    if deletes:
        builder = builder.whenMatchedDelete(condition=seq_s.isNull())
        builder = builder.whenMatchedUpdateAll().whenNotMatchedInsertAll(
            condition=seq_s.isNotNull()
        )
    else:
        builder = builder.whenMatchedUpdateAll().whenNotMatchedInsertAll()
    if truncate_at is not None:
        builder = builder.whenNotMatchedBySourceDelete(condition=seq_t < F.lit(truncate_at))
    if lay.new_columns or lay.widened:
        builder = builder.withSchemaEvolution()
    with session_conf(table.spark, default_merge_conf(table.spark)):
        builder.execute()


def _to_log(partial: bool) -> Column:
    """Rows of :func:`_per_seq` the log must remember and does not hold yet: new deletes,
    and with ``partial`` every new upsert as it arrived."""
    e = F.col("__lo")
    return (
        (F.col("__new") == 1)
        & (F.col("__logged") == 0)
        & (e[DEL] | F.lit(partial))
        & ~F.col("__conflict")
    )


def _seq_count_aggs(lay: Layout, partial: bool) -> list[Column]:
    """Per-key sums over :func:`_per_seq`'s rows (``__n_<name>`` for each of
    :data:`_SEQ_COUNTS`): conflicting (key, sequence) pairs, events to log, of them deletes,
    and (``partial``) new upserts with a NULL attribute. A key with no new event has none of
    them, so :func:`_per_key` dropping such keys loses no count."""
    e = F.col("__lo")
    nulls = any_of([e[a].isNull() for a in lay.attrs]) if partial else F.lit(False)
    conds = {
        "conflicts": F.col("__conflict"),
        "logged": _to_log(partial),
        "tombstones": _to_log(partial) & e[DEL],
        "ignored_null_updates": (F.col("__new") == 1) & ~e[DEL] & nulls,
    }
    return [F.sum(conds[c].cast("int")).alias(f"__n_{c}") for c in _SEQ_COUNTS]


def _log_rows(per_seq: DataFrame, lay: Layout, partial: bool) -> DataFrame:
    """The events of :func:`_to_log`, in the log's shape."""
    e = F.col("__lo")
    return per_seq.where(_to_log(partial)).select(
        *[qcol(k) for k in lay.keys],
        F.col(SEQ),
        e[DEL].alias(DEL),
        *[e[a].alias(a) for a in lay.attrs],
    )


def _truncate_row(shape: DataFrame, lay: Layout, at: Any, seq_type: T.DataType) -> DataFrame:
    """The log row of a truncate: every key NULL."""
    types = {f.name: f.dataType for f in shape.schema.fields}
    return shape.sparkSession.range(1).select(
        *[F.lit(None).cast(types[k]).alias(k) for k in lay.keys],
        F.lit(at).cast(seq_type).alias(SEQ),
        F.lit(True).alias(DEL),
        *[F.lit(None).cast(types[a]).alias(a) for a in lay.attrs],
    )
