"""The chain path: the stored versions and logged events of the touched keys become events,
are unioned with the batch's events and, in one pass shuffled once by key, the chains are
rebuilt with window functions and each row is marked with what the MERGE must do
(DESIGN.md §5) and whether the event log must remember it (:mod:`lakehouse.scd2.log`).

A stored version remembers its stored end and untracked values, so no join with the table
is needed to diff.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Column, Window, WindowSpec
from pyspark.sql import functions as F

from lakehouse.scd2.columns import (
    ACT,
    DEL,
    SEQ,
    SRC,
    SRC_LOG,
    SRC_NEW,
    SRC_STORED_DELETE,
    SRC_STORED_VERSION,
    all_of,
    any_of,
    qcol,
    same,
)
from lakehouse.scd2.schema import Layout
from lakehouse.scd2.spec import SCD2Spec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["chain_events", "chain_log_rows", "chain_metrics", "chain_source", "classify_chains"]


def chain_events(
    stored: DataFrame,
    logged: DataFrame | None,
    new: DataFrame,
    lay: Layout,
    spec: SCD2Spec,
    partitions: int,
    *,
    partial: bool = False,
) -> DataFrame:
    """Stored versions, logged events and new events of the touched keys as one frame.

    A stored version is an event at its ``valid_from`` that remembers its stored
    ``valid_to`` / ``is_current`` and untracked values (``__s_*``; every attribute with
    ``partial``) for the diff; a closed version with no stored successor starting at its
    ``valid_to`` also yields a delete event there. Logged events (``logged``, in the shape
    of ``new``) are events as they arrived; ``__inlog`` marks them. Exact duplicates (of
    origin too) are dropped.

    ``partial`` (``ignore_null_updates``): a stored version whose event is in the log takes
    that event's values as they arrived (NULLs included; the chain resolves them again)
    and the log row is dropped, so the version is one event that still remembers what is
    stored.

    The frame is hash-partitioned by the keys into ``partitions`` partitions once; every
    window here and in :func:`classify_chains` is partitioned by the keys, so Spark shuffles
    nothing else. Duplicates are found in the same sort order as the chain (sequence,
    origin, kind, then attributes), so they need no window of their own.
    """
    keys = [qcol(k) for k in lay.keys]
    vf_type = stored.schema[spec.valid_from].dataType
    extra = {
        "__svt": (qcol(spec.valid_to), F.lit(None).cast(vf_type)),
        "__sic": (qcol(spec.is_current), F.lit(None).cast("boolean")),
        **{
            f"__s_{u}": (qcol(u), F.lit(None).cast(stored.schema[u].dataType))
            for u in (lay.attrs if partial else lay.untracked)
        },
    }
    versions = stored.select(
        *keys,
        qcol(spec.valid_from).alias(SEQ),
        F.lit(False).alias(DEL),
        F.lit(SRC_STORED_VERSION).alias(SRC),
        *[qcol(a) for a in lay.attrs],
        *[col.alias(name) for name, (col, _) in extra.items()],
    )

    def as_events(df: DataFrame, src: int) -> DataFrame:
        return df.select(
            *keys,
            F.col(SEQ),
            F.col(DEL),
            F.lit(src).alias(SRC),
            *[qcol(a) for a in lay.attrs],
            *[none.alias(name) for name, (_, none) in extra.items()],
        )

    both = versions.unionByName(as_events(new, SRC_NEW))
    if logged is not None:
        both = both.unionByName(as_events(logged, SRC_LOG))
    both = both.repartition(partitions, *keys)
    # One window order for this step: exact duplicates (same key, sequence, origin, kind
    # and delete-masked attributes) are adjacent in it, the first is kept.
    order = [F.col(SEQ), F.col(SRC), F.col(DEL), *[qcol(a) for a in lay.attrs]]
    wd = Window.partitionBy(*keys).orderBy(*order)
    next_stored = F.first(
        F.when(F.col(SRC) == SRC_STORED_VERSION, F.col(SEQ)), ignorenulls=True
    ).over(wd.rowsBetween(1, Window.unboundedFollowing))
    closes = (
        (F.col(SRC) == SRC_STORED_VERSION)
        & F.col("__svt").isNotNull()
        & (next_stored.isNull() | (next_stored != F.col("__svt")))
    )
    src = F.col(SRC)
    flags = {
        "__dup": all_of([same(c, F.lag(c).over(wd)) for c in order]),
        "__closes": closes,
        "__inlog": src == SRC_LOG,
    }
    if partial:
        at_same = F.lead(F.col(SEQ)).over(wd) == F.col(SEQ)
        shadowed = (
            (src == SRC_STORED_VERSION)
            & (F.lead(src).over(wd) == SRC_LOG)
            & at_same
            & ~F.lead(F.col(DEL)).over(wd)
        )
        shadowed = F.coalesce(shadowed, F.lit(False))
        absorbed = (
            (src == SRC_LOG)
            & (F.lag(src).over(wd) == SRC_STORED_VERSION)
            & (F.lag(F.col(SEQ)).over(wd) == F.col(SEQ))
            & ~F.col(DEL)
        )
        flags.update(
            {
                "__inlog": (src == SRC_LOG) | shadowed,
                "__absorbed": F.coalesce(absorbed, F.lit(False)),
                **{
                    a: F.when(shadowed, F.lead(qcol(a)).over(wd)).otherwise(qcol(a))
                    for a in lay.attrs
                },
            }
        )
    both = both.withColumns(flags).where(~F.col("__dup"))
    if partial:
        both = both.where(~F.col("__absorbed"))
    gen = both.withColumn(
        "__g",
        F.explode(
            F.when(F.col("__closes"), F.array(F.lit(0), F.lit(1))).otherwise(F.array(F.lit(0)))
        ),
    )
    is_del_ev = F.col("__g") == 1

    def pick(name: str, for_delete: Column) -> Column:
        return F.when(is_del_ev, for_delete).otherwise(F.col(name)).alias(name)

    cols = [
        *keys,
        pick(SEQ, F.col("__svt")),
        pick(DEL, F.lit(True)),
        pick(SRC, F.lit(SRC_STORED_DELETE)),
        *[pick(a, F.lit(None).cast(gen.schema[a].dataType)) for a in lay.attrs],
        *[pick(name, none) for name, (_, none) in extra.items()],
        pick("__inlog", F.lit(False)),
    ]
    return gen.select(*cols)


def _value(name: str, partial: bool) -> Column:
    """An attribute's value in effect at a row: resolved (``__r_*``) with ``partial``."""
    return F.col(f"__r_{name}") if partial else qcol(name)


def classify_chains(
    events: DataFrame, lay: Layout, *, log_all: bool = False, partial: bool = False
) -> DataFrame:
    """Rebuild the chains and mark each row: opens a version, closes one (effective
    delete), is a late or conflicting new event, what the MERGE must do (``ACT``) and
    whether the event log must remember it (``__tolog``).

    Every window has the same partitioning and order (keys; sequence, origin, kind,
    attributes: the order :func:`chain_events` deduplicates in), so Spark sorts once and
    runs two window operators (three with untracked columns); columns are added a few at
    a time (``withColumns``) because each DataFrame step is analysed anew on the driver,
    which on this plan costs more than the work on 10k rows.

    ``log_all``: every new upsert is logged (the spec has untracked columns, whose values
    in a version are the latest event's, or ``partial``, so each event's own are kept).

    ``partial`` (``ignore_null_updates``): an upsert's NULL attribute keeps the value in
    effect. Each row's values in effect (``__r_*``) are the latest non-NULL value of each
    attribute since the key's latest delete; versions are opened and written from them,
    while conflicts, duplicates and the log use the events as they arrived.
    """
    keys = [qcol(k) for k in lay.keys]
    order = [F.col(SEQ), F.col(SRC), F.col(DEL), *[qcol(a) for a in lay.attrs]]
    w = Window.partitionBy(*keys).orderBy(*order)
    if partial:
        events = _resolve(events, lay, w)

    def val(name: str) -> Column:
        return _value(name, partial)

    prev_exists = F.lag(F.lit(1)).over(w).isNotNull()
    prev_del = F.coalesce(F.lag(F.col(DEL)).over(w), F.lit(False))
    changed = any_of([~same(val(t), F.lag(val(t)).over(w)) for t in lay.tracked])
    src = F.col(SRC)
    is_new = src == SRC_NEW
    # The stored or logged event at this row's sequence, if any: those sort before new
    # ones at one sequence, and the latest of them is the one a new event must match.
    last_stored = F.last(
        F.when(
            ~is_new,
            F.struct(
                F.col(SEQ).alias("s"),
                F.col(DEL).alias("d"),
                F.col("__inlog").alias("inlog"),
                *[qcol(a).alias(f"a{i}") for i, a in enumerate(lay.attrs)],
            ),
        ),
        ignorenulls=True,
    ).over(w.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    stored_here = last_stored.isNotNull() & (last_stored["s"] == F.col(SEQ))
    tracked_same = all_of(
        [same(last_stored[f"a{i}"], qcol(a)) for i, a in enumerate(lay.attrs) if a in lay.tracked]
    )
    attrs_same = all_of([same(last_stored[f"a{i}"], qcol(a)) for i, a in enumerate(lay.attrs)])
    # Conflict: another new event at this (key, seq) (distinct after deduplication, and
    # adjacent in this order), or a new event contradicting the stored event there (other
    # kind or tracked values).
    new_neighbour = any_of(
        [
            (f(src).over(w) == SRC_NEW) & (f(F.col(SEQ)).over(w) == F.col(SEQ))
            for f in (F.lag, F.lead)
        ]
    )
    contradict = stored_here & ((last_stored["d"] != F.col(DEL)) | (~F.col(DEL) & ~tracked_same))
    stored_max = F.max(F.when(~is_new, F.col(SEQ))).over(
        w.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    )
    # A log row right after a stored row at its sequence remembers that stored event.
    logged_here = (F.lead(src).over(w) == SRC_LOG) & (F.lead(F.col(SEQ)).over(w) == F.col(SEQ))
    same_here = stored_here & (last_stored["d"] == F.col(DEL)) & attrs_same
    out = events.withColumns(
        {
            "__first": ~prev_exists,
            "__open": ~F.col(DEL) & (~prev_exists | prev_del | changed),
            "__effdel": F.col(DEL) & prev_exists & ~prev_del,
            "__conflict": F.coalesce(is_new & (new_neighbour | contradict), F.lit(False)),
            "__late": is_new & (F.col(SEQ) < stored_max) & ~stored_here,
            # a new event equal to a stored or logged one there; with log_all, to a logged one
            "__known": F.coalesce(
                same_here & (last_stored["inlog"] | F.lit(not log_all)), F.lit(False)
            ),
            "__logged_here": F.coalesce(logged_here, F.lit(False)),
        }
    )
    boundary = F.col("__open") | F.col("__effdel")
    out = out.withColumns(
        {
            "__boundary": boundary,
            "__grp": F.sum(boundary.cast("int")).over(
                w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
            ),
            "__vt": F.first(F.when(boundary, F.col(SEQ)), True).over(
                w.rowsBetween(1, Window.unboundedFollowing)
            ),
        }
    )
    if lay.untracked:
        wg = (
            Window.partitionBy(*keys, F.col("__grp"))
            .orderBy(*order)
            .rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
        )
        out = out.withColumns({f"__g_{u}": F.last(val(u)).over(wg) for u in lay.untracked})
    # What the MERGE does: a new or logged event that opens a version is inserted; a stored
    # version that no longer opens one (coalesced) is deleted; one that still does is
    # updated if its end, current flag or (in place) untracked values changed.
    stored_version = src == SRC_STORED_VERSION
    new_ic = F.col("__vt").isNull()
    differs = any_of(
        [
            ~same(F.col("__svt"), F.col("__vt")),
            ~same(F.col("__sic"), new_ic),
            *[~same(F.col(f"__s_{u}"), F.col(f"__g_{u}")) for u in lay.untracked],
            # with partial updates a late event can change what a stored version carries
            *([~same(F.col(f"__s_{t}"), val(t)) for t in lay.tracked] if partial else []),
        ]
    )
    act = (
        F.when((is_new | (src == SRC_LOG)) & F.col("__open"), F.lit("insert"))
        .when(stored_version & ~F.col("__open"), F.lit("delete"))
        .when(stored_version & differs, F.lit("update"))
    )
    # What the log must remember: a new delete, a new upsert that opens nothing (or any,
    # with log_all) unless an equal event is known there; a stored version coalesced
    # away, or a derived delete no longer in effect, unless logged there already.
    new_to_log = (
        is_new
        & ~F.col("__conflict")
        & ~F.col("__known")
        & (F.col(DEL) | ~F.col("__open") | F.lit(log_all))
    )
    gone = (stored_version & ~F.col("__open")) | ((src == SRC_STORED_DELETE) & ~F.col("__effdel"))
    ignored = (
        is_new & ~F.col(DEL) & any_of([qcol(a).isNull() for a in lay.attrs])
        if partial
        else F.lit(False)
    )
    return out.withColumns(
        {
            ACT: act,
            "__tolog": new_to_log | (gone & ~(F.col("__logged_here") | F.col("__inlog"))),
            "__ignored_nulls": ignored,
        }
    )


def _resolve(events: DataFrame, lay: Layout, w: WindowSpec) -> DataFrame:
    """Each row's values in effect (``__r_*``): per attribute, the latest non-NULL value
    since the key's latest delete (``__seg`` counts the deletes so far)."""
    upto = w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    seg = F.col("__seg")
    with_seg = events.withColumn("__seg", F.sum(F.col(DEL).cast("int")).over(upto))
    resolved = {}
    for a in lay.attrs:
        latest = F.last(
            F.when(qcol(a).isNotNull(), F.struct(seg.alias("g"), qcol(a).alias("v"))),
            ignorenulls=True,
        ).over(upto)
        resolved[f"__r_{a}"] = F.when(~F.col(DEL) & (latest["g"] == seg), latest["v"])
    return with_seg.withColumns(resolved)


def chain_source(
    classified: DataFrame, lay: Layout, spec: SCD2Spec, *, partial: bool = False
) -> DataFrame:
    """Rows to write; delete rows carry NULL ``is_current`` so the MERGE can tell them
    apart without an extra source column."""
    return classified.where(F.col(ACT).isNotNull()).select(
        *[qcol(k) for k in lay.keys],
        *[
            (F.col(f"__g_{a}") if a in lay.untracked else _value(a, partial)).alias(a)
            for a in lay.attrs
        ],
        F.col(SEQ).alias(spec.valid_from),
        F.col("__vt").alias(spec.valid_to),
        F.when(F.col(ACT) != "delete", F.col("__vt").isNull()).alias(spec.is_current),
    )


def chain_log_rows(classified: DataFrame, lay: Layout) -> DataFrame:
    """The events the log must remember, in the shape of the batch's events."""
    return classified.where(F.col("__tolog")).select(
        *[qcol(k) for k in lay.keys], F.col(SEQ), F.col(DEL), *[qcol(a) for a in lay.attrs]
    )


def chain_metrics(classified: DataFrame) -> dict[str, int]:
    """Every count of the chain path, in one aggregation."""
    is_new = F.col(SRC) == SRC_NEW
    act = F.col(ACT)

    def n(cond: Column) -> Column:
        return F.sum(cond.cast("int"))

    row = classified.agg(
        n(F.col("__first")).alias("touched_keys"),
        n(is_new).alias("events"),
        n(is_new & ~F.col("__boundary")).alias("unchanged"),
        n(is_new & F.col("__effdel")).alias("deleted"),
        n(F.col("__late")).alias("late"),
        n(F.col("__conflict")).alias("conflicts"),
        n(act == "insert").alias("inserted"),
        n(act == "update").alias("updated"),
        n(act == "delete").alias("removed"),
        n(
            (act == "insert") & F.col("__vt").isNotNull()
            | (act == "update") & F.col("__svt").isNull() & F.col("__vt").isNotNull()
        ).alias("closed"),
        n(F.col("__tolog") & is_new & F.col(DEL)).alias("tombstoned"),
        n(F.col("__tolog")).alias("logged"),
        n(F.col("__ignored_nulls")).alias("ignored_null_updates"),
    ).first()
    return {name: int(value or 0) for name, value in (row.asDict() if row else {}).items()}
