"""The batch side of a call: the prepared change feed (NULL keys set aside, deletes
marked), its counts and the bounds of the keys it touches (:class:`Touched`), and the
stored versions of those keys (:func:`stored_versions`).

Examples
--------
>>> Touched(0, {}, None).count
0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.scd2.columns import DEL, SEQ, all_of, qcol
from lakehouse.scd2.schema import Layout
from lakehouse.scd2.spec import SCD2Spec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "BROADCAST_KEYS",
    "Touched",
    "batch_stats",
    "keyed_events",
    "prepare_feed",
    "stored_versions",
]

#: Batches touching at most this many keys read the stored rows with a broadcast semi-join.
BROADCAST_KEYS = 2_000_000


@dataclass(frozen=True)
class Touched:
    """Literal bounds of the touched keys: min/max per key column, the values when few."""

    count: int
    bounds: dict[str, tuple[Any, Any]]
    values: list[Any] | None

    def predicate(self, alias: str | None) -> Column:
        """A condition true for every touched key (of the relation ``alias``)."""
        if self.count == 0:
            return F.lit(False)
        preds = [
            qcol(k, alias).between(F.lit(lo), F.lit(hi)) for k, (lo, hi) in self.bounds.items()
        ]
        if self.values is not None:
            (key,) = self.bounds
            preds.append(qcol(key, alias).isin(self.values))
        return all_of(preds)


def prepare_feed(changes: DataFrame, spec: SCD2Spec, lay: Layout, reason_column: str) -> DataFrame:
    """The feed cast to the target's types, with the reason a row is rejected in
    ``reason_column`` ("" if it is valid: no NULL key or sequence) and the delete flag."""
    feed = changes
    for col, dtype in lay.casts.items():
        feed = feed.withColumn(col, qcol(col).cast(dtype))
    is_del = (
        F.coalesce(F.expr(spec.delete_when), F.lit(False))
        if spec.delete_when is not None
        else F.lit(False)
    )
    null_reason = F.concat_ws(
        "; ",
        *[F.when(qcol(k).isNull(), F.lit(f"null key: {k}")) for k in lay.keys],
        F.when(qcol(lay.seq).isNull(), F.lit(f"null sequence: {lay.seq}")),
    )
    return feed.withColumn(reason_column, null_reason).withColumn(DEL, is_del)


def keyed_events(valid: DataFrame, lay: Layout) -> DataFrame:
    """The valid rows as events: keys, sequence, delete flag and attributes (NULL for a
    delete, so deletes are equal whatever their payload)."""
    return valid.select(
        *[qcol(k) for k in lay.keys],
        qcol(lay.seq).alias(SEQ),
        F.col(DEL),
        *[F.when(~F.col(DEL), qcol(a)).alias(a) for a in lay.attrs],
    )


def batch_stats(
    prepared: DataFrame, keys: Sequence[str], reason_column: str, in_list_limit: int
) -> tuple[int, int, Touched]:
    """One pass over the batch: row count, rejected rows, an estimate of the touched keys
    (HyperLogLog, ~5%) and their min/max per key column; a global aggregate without a
    distinct, so one stage. The key values themselves are collected only when a single key
    column may have at most ``in_list_limit`` of them (then counted exactly)."""
    valid = F.col(reason_column) == ""
    key = qcol(keys[0]) if len(keys) == 1 else F.struct(*[qcol(k) for k in keys])
    aggs = [
        F.count(F.lit(1)).alias("__rows"),
        F.sum((~valid).cast("int")).alias("__bad"),
        F.approx_count_distinct(F.when(valid, key)).alias("__n"),
    ]
    for i, k in enumerate(keys):
        aggs += [
            F.min(F.when(valid, qcol(k))).alias(f"__lo{i}"),
            F.max(F.when(valid, qcol(k))).alias(f"__hi{i}"),
        ]
    row = prepared.agg(*aggs).first()
    if row is None:  # pragma: no cover - a global aggregate always returns one row
        return 0, 0, Touched(0, {}, None)
    rows, bad, n = int(row["__rows"] or 0), int(row["__bad"] or 0), int(row["__n"] or 0)
    if n == 0:
        return rows, bad, Touched(0, {}, None)
    bounds = {k: (row[f"__lo{i}"], row[f"__hi{i}"]) for i, k in enumerate(keys)}
    values = None
    if len(keys) == 1 and n <= in_list_limit * 1.2:  # the estimate's error is ~5%
        found = [
            r[0]
            for r in prepared.where(valid)
            .select(qcol(keys[0]))
            .distinct()
            .limit(in_list_limit + 1)
            .collect()
        ]
        if len(found) <= in_list_limit:
            values, n = found, len(found)
    return rows, bad, Touched(n, bounds, values)


def stored_versions(
    target_df: DataFrame | None,
    keyed: DataFrame,
    touched: Touched,
    feed_schema: T.StructType,
    lay: Layout,
    spec: SCD2Spec,
) -> DataFrame:
    """The stored versions of the touched keys (an empty frame of the target's shape when
    there is no table or no key); columns new in this batch are NULL in them."""
    if target_df is not None and touched.count:
        touched_keys = keyed.select(*[qcol(k) for k in lay.keys])
        if touched.count <= BROADCAST_KEYS:
            # Without the hint Spark plans a sort-merge semi-join (the batch's size is not
            # known at planning) and shuffles the whole table to find the touched keys.
            touched_keys = F.broadcast(touched_keys)
        stored = target_df.where(touched.predicate(None)).join(
            touched_keys, list(lay.keys), "left_semi"
        )
    else:
        stored = _no_versions(keyed.sparkSession, feed_schema, lay, spec)
    for c in lay.new_columns:
        stored = stored.withColumn(c, F.lit(None).cast(feed_schema[c].dataType))
    return stored


def _no_versions(
    spark: SparkSession, feed_schema: T.StructType, lay: Layout, spec: SCD2Spec
) -> DataFrame:
    schema = T.StructType(
        [
            *[T.StructField(k, feed_schema[k].dataType) for k in lay.keys],
            *[T.StructField(a, feed_schema[a].dataType) for a in lay.attrs],
            T.StructField(spec.valid_from, feed_schema[lay.seq].dataType),
            T.StructField(spec.valid_to, feed_schema[lay.seq].dataType),
            T.StructField(spec.is_current, T.BooleanType()),
        ]
    )
    return spark.createDataFrame([], schema)
