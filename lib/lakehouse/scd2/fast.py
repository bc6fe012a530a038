"""The fast path: keys whose one new event is later than all their stored history.

For such a key the chain model reduces to comparing the event with the key's open
version, with no window: one aggregation per key (:func:`per_key`) decides it, and
:func:`fast_source` gives its MERGE rows in the chain path's shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakehouse.scd2.columns import DEL, SEQ, any_of, qcol, same
from lakehouse.scd2.schema import Layout
from lakehouse.scd2.spec import SCD2Spec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["FAST_METRICS", "fast_log_rows", "fast_metrics", "fast_source", "per_key"]

#: Counts the fast path contributes to a call's metrics (the chain path adds its own).
FAST_METRICS = (
    "touched_keys",
    "events",
    "inserted",
    "closed",
    "updated",
    "unchanged",
    "deleted",
    "chain_keys",
    "tombstoned",
    "ignored_null_updates",
    "logged",
)


def per_key(
    keyed: DataFrame,
    stored: DataFrame,
    logged: DataFrame | None,
    lay: Layout,
    spec: SCD2Spec,
    partitions: int,
    *,
    partial: bool = False,
) -> DataFrame:
    """One row per touched key: its new events (deduplicated), its stored history and its
    logged events (``logged``, in the shape of ``keyed``), summed up, and whether the key
    takes the fast path (``__simple``).

    A key is simple when, after exact duplicates are dropped, it has one new event whose
    sequence is later than every stored ``valid_from`` and ``valid_to`` and every logged
    event of the key, and the key has at most one open version, the latest. The chain model then reduces to
    comparing the event with that open version (``__c``): the event cannot be late,
    cannot conflict and cannot split or coalesce anything, so no window is needed. What
    the MERGE must do for such a key is decided by the flags ``__close`` (end the open
    version at the event), ``__upd`` (same tracked values: write the event's untracked
    values into the open version) and ``__ins`` (the event opens a version).
    """
    keys = [qcol(k) for k in lay.keys]
    vf, vt = qcol(spec.valid_from), qcol(spec.valid_to)
    attrs = [qcol(a) for a in lay.attrs]
    # New events and stored versions in one frame, shuffled by key once and grouped in
    # one aggregation. Exact duplicates are equal structs, so a key has one distinct new
    # event iff the least and greatest of its events are equal (NULL-safe, as in dedup).
    vf_type = stored.schema[spec.valid_from].dataType
    no_seq = F.lit(None).cast(vf_type)
    new_ev = keyed.select(
        *keys,
        F.struct(F.col(SEQ), F.col(DEL), *attrs).alias("__e"),
        no_seq.alias("__vf"),
        no_seq.alias("__vt"),
        F.lit(None).alias("__c"),
    )
    versions = stored.select(
        *keys,
        F.lit(None).alias("__e"),
        vf.alias("__vf"),
        vt.alias("__vt"),
        F.when(vt.isNull(), F.struct(vf.alias(SEQ), *attrs)).alias("__c"),
    )
    is_version = F.col("__vf").isNotNull()
    both = versions.unionByName(new_ev, allowMissingColumns=False)
    if logged is not None:
        # a logged event counts as history ending at its sequence (``__vt``)
        both = both.unionByName(
            logged.select(
                *keys,
                F.lit(None).alias("__e"),
                no_seq.alias("__vf"),
                F.col(SEQ).cast(vf_type).alias("__vt"),
                F.lit(None).alias("__c"),
            )
        )
    e_min, e_max = F.min("__e"), F.max("__e")
    per_key = (
        both.repartition(partitions, *keys)
        .groupBy(*keys)
        .agg(
            e_min.alias("__e"),
            same(e_min, e_max).alias("__one"),
            F.count(F.when(is_version & F.col("__vt").isNull(), F.lit(1))).alias("__nc"),
            F.max("__vf").alias("__mvf"),
            F.max("__vt").alias("__mvt"),
            F.first("__c", ignorenulls=True).alias("__c"),
        )
    )
    if partial:
        # ignore_null_updates: the event's NULLs keep the open version's values (after a
        # delete, or with no history, there is nothing to keep); __eraw is the event as
        # it arrived, for the log
        raw, c = F.col("__e"), F.col("__c")
        resolved = F.struct(
            raw[SEQ].alias(SEQ),
            raw[DEL].alias(DEL),
            *[F.when(~raw[DEL], F.coalesce(raw[a], c[a])).alias(a) for a in lay.attrs],
        )
        per_key = per_key.withColumns({"__eraw": raw, "__e": F.when(raw.isNotNull(), resolved)})
    e, c = F.col("__e"), F.col("__c")
    seq = e[SEQ]
    simple = (
        F.col("__one")
        & (F.col("__nc") <= 1)
        & (F.col("__mvf").isNull() | (F.col("__mvf") < seq))
        & (F.col("__mvt").isNull() | (F.col("__mvt") < seq))
        & (c.isNull() | (c[SEQ] == F.col("__mvf")))
    )
    has_c, is_del = c.isNotNull(), e[DEL]
    changed = any_of([~same(e[t], c[t]) for t in lay.tracked])
    untracked_changed = any_of([~same(e[u], c[u]) for u in lay.untracked])
    return per_key.withColumns(
        {
            "__simple": simple,
            "__close": simple & has_c & (is_del | changed),
            "__upd": simple & has_c & ~is_del & ~changed & untracked_changed,
            "__ins": simple & ~is_del & (~has_c | changed),
            "__unch": simple & ((is_del & ~has_c) | (~is_del & has_c & ~changed)),
            "__del": simple & has_c & is_del,
        }
    )


def _to_log(log_all: bool) -> Column:
    """Simple keys whose event the log must remember: a delete or an upsert that opens
    nothing (or any event, with ``log_all``), as the chain path decides."""
    return F.col("__simple") & (~F.col("__ins") | F.lit(log_all))


def fast_metrics(
    summary: DataFrame, lay: Layout, *, log_all: bool = False, partial: bool = False
) -> dict[str, int]:
    """The fast path's counts, in the chain path's terms (one aggregation)."""

    def n(name: str | Column) -> Column:
        return F.sum((F.col(name) if isinstance(name, str) else name).cast("int"))

    row = summary.agg(
        n("__simple").alias("touched_keys"),
        n("__ins").alias("inserted"),
        n("__close").alias("closed"),
        (n("__close") + n("__upd")).alias("updated"),
        n("__unch").alias("unchanged"),
        n("__del").alias("deleted"),
        F.sum((~F.col("__simple")).cast("int")).alias("chain_keys"),
        n(F.col("__simple") & F.col("__e")[DEL]).alias("tombstoned"),
        n(_to_log(log_all)).alias("logged"),
        n(_ignored_nulls(lay) if partial else F.lit(False)).alias("ignored_null_updates"),
    ).first()
    got = row.asDict() if row is not None else {}
    out = {k: int(got.get(k) or 0) for k in FAST_METRICS}
    out["events"] = out["touched_keys"]  # one event per simple key
    return out


def fast_source(summary: DataFrame, lay: Layout, spec: SCD2Spec) -> DataFrame:
    """MERGE rows of the simple keys, in the chain path's shape
    (:func:`~lakehouse.scd2.chain.chain_source`): the open version (ended at the event, or
    with the event's untracked values) and the event's version."""
    e, c = F.col("__e"), F.col("__c")
    vf_type = summary.schema["__e"].dataType[SEQ].dataType  # type: ignore[index]
    keys = [qcol(k).alias(k) for k in lay.keys]

    def row(attrs: list[Column], vf: Column, vt: Column, ic: Column) -> Column:
        return F.struct(
            *keys,
            *[a.alias(n) for a, n in zip(attrs, lay.attrs, strict=True)],
            vf.alias(spec.valid_from),
            vt.cast(vf_type).alias(spec.valid_to),
            ic.alias(spec.is_current),
        )

    stored_row = row(
        [
            F.when(F.col("__upd"), e[a]).otherwise(c[a]) if a in lay.untracked else c[a]
            for a in lay.attrs
        ],
        c[SEQ],
        F.when(F.col("__close"), e[SEQ]),
        ~F.col("__close"),
    )
    event_row = row([e[a] for a in lay.attrs], e[SEQ], F.lit(None), F.lit(True))
    rows = F.array(
        F.when(F.col("__close") | F.col("__upd"), stored_row),
        F.when(F.col("__ins"), event_row),
    )
    return (
        summary.where(F.col("__simple"))
        .select(F.inline(F.filter(rows, lambda r: r.isNotNull())))
        .select(
            *[qcol(k) for k in lay.keys],
            *[qcol(a) for a in lay.attrs],
            *[qcol(m) for m in spec.meta_columns],
        )
    )


def _ignored_nulls(lay: Layout) -> Column:
    """Simple keys whose upsert has a NULL attribute (``ignore_null_updates``)."""
    raw = F.col("__eraw")
    return F.col("__simple") & ~raw[DEL] & any_of([raw[a].isNull() for a in lay.attrs])


def fast_log_rows(summary: DataFrame, lay: Layout, *, log_all: bool = False) -> DataFrame:
    """The simple keys' events the log must remember (as they arrived), in the shape of the
    batch's events."""
    e = F.col("__eraw") if "__eraw" in summary.columns else F.col("__e")
    return summary.where(_to_log(log_all)).select(
        *[qcol(k) for k in lay.keys],
        e[SEQ].alias(SEQ),
        e[DEL].alias(DEL),
        *[e[a].alias(a) for a in lay.attrs],
    )
