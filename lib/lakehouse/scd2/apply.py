"""Applying a batch of change events to an SCD2 Delta table: :func:`apply_scd2`.

How a batch is applied (one Delta commit, or none):

1. rows with a NULL key or sequence are set aside in ``result.quarantine``;
2. exact duplicate events are dropped; two different events with one (key, sequence) are a
   conflict (default: fail before writing, naming the keys);
3. the stored versions of the touched keys are read back (a broadcast semi-join, after
   Delta's data skipping on the key bounds) and grouped with the new events by key, in
   one shuffle: a key whose one new event is later than all its stored history (the
   common case) takes the *fast path*, where the chain model reduces to comparing the
   event with the key's open version, with no window;
4. every other key takes the *chain path*: its stored versions become events (a version
   is an event at its ``valid_from``, a closed version with no successor is a delete at
   its ``valid_to``), are unioned with its new events and, in one pass shuffled once by
   key, the chains are rebuilt with window functions and each row is marked with what
   the MERGE must do (a stored version remembers its stored end and untracked values, so
   no join with the table is needed to diff);
5. all counts are known before writing; only the difference is written, with one MERGE
   keyed on (keys, valid_from) whose condition also bounds the touched keys so Delta can
   skip files. An empty difference commits nothing, so replaying a batch is a no-op;
6. the events the table cannot show (deletes, upserts that open no version, versions
   coalesced away) are appended to the table's event log (:mod:`~lakehouse.scd2.log`),
   whose events of the touched keys steps 3 and 4 read back: so batches give the same
   table in whatever order they arrive, within the log's retention.

Each step is a function of its own module (:mod:`~lakehouse.scd2.schema`,
:mod:`~lakehouse.scd2.batch`, :mod:`~lakehouse.scd2.fast`, :mod:`~lakehouse.scd2.chain`,
:mod:`~lakehouse.scd2.merge`); this module runs them in order, once per attempt, and
retries the attempt on a Delta commit conflict (:mod:`lakehouse.writes.retry`).

Examples
--------
>>> DEFAULT_RETRY.attempts
4
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from lakehouse.scd2.batch import (
    BROADCAST_KEYS,
    Touched,
    batch_stats,
    keyed_events,
    prepare_feed,
    stored_versions,
)
from lakehouse.scd2.chain import (
    chain_events,
    chain_log_rows,
    chain_metrics,
    chain_source,
    classify_chains,
)
from lakehouse.scd2.columns import DEL, SEQ, qcol
from lakehouse.scd2.fast import FAST_METRICS, fast_log_rows, fast_metrics, fast_source, per_key
from lakehouse.scd2.invariants import check_scd2_invariants
from lakehouse.scd2.log import append_events, expire_events, log_ref, logged_events
from lakehouse.scd2.merge import default_merge_conf, merge_difference
from lakehouse.scd2.schema import Layout, resolve_layout
from lakehouse.scd2.spec import (
    ConflictPolicy,
    SCD2ConflictError,
    SCD2Result,
    SCD2Spec,
    SCD2SpecError,
)
from lakehouse.spark.delta import DeltaTableRef
from lakehouse.spark.session import session_conf
from lakehouse.spark.sql import validate_identifier
from lakehouse.writes.retry import RetryPolicy, retry_on_conflict

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakehouse.writes.idempotency import TxnIdentity

__all__ = ["DEFAULT_RETRY", "apply_scd2", "check_call", "conflict_error", "with_retries"]

#: How :func:`apply_scd2` retries a Delta commit conflict unless told otherwise: 4 attempts
#: (3 retries), full-jitter exponential backoff from 0.5 s, capped at 8 s.
DEFAULT_RETRY = RetryPolicy(attempts=4, base_delay_s=0.5, max_delay_s=8.0)

# Touched keys per partition of the event frame (a key has its new events and versions).
_KEYS_PER_PARTITION = 50_000
# Valid rows per touched key above which a batch is taken to have keys with several events.
_SEVERAL_EVENTS = 1.1


def apply_scd2(
    spark: SparkSession,
    target: str,
    changes: DataFrame,
    spec: SCD2Spec,
    *,
    on_conflict: ConflictPolicy = "fail",
    retry: RetryPolicy | None = None,
    in_list_limit: int = 1000,
    reason_column: str = "reason",
    check_invariants: bool = False,
    txn: TxnIdentity | None = None,
    merge_conf: Mapping[str, str] | None = None,
    fast_path: bool = True,
) -> SCD2Result:
    """Apply a batch of change events to the SCD2 Delta table ``target``.

    Parameters
    ----------
    spark
        The session.
    target
        Delta table path (contains ``/`` or ``:``) or table name; created if missing.
    changes
        Change events: keys, ``spec.sequence_by``, attribute columns and any columns
        ``spec.delete_when`` uses.
    spec
        The :class:`SCD2Spec`.
    on_conflict
        ``"fail"`` (default): different events with one (key, sequence) raise
        :class:`SCD2ConflictError` naming them, before anything is written.
        ``"quarantine"``: those events go to ``result.quarantine`` and the rest is applied.
    retry
        How a Delta commit conflict is retried (:class:`~lakehouse.writes.retry.RetryPolicy`:
        attempts, jittered exponential backoff); each retry recomputes the whole batch
        against the new table version. ``None`` (default): :data:`DEFAULT_RETRY`.
        ``RetryPolicy(attempts=1)`` does not retry.
    in_list_limit
        With a single key column and at most this many touched keys, the MERGE condition
        also lists the keys (``IN``); above it only min/max bounds are used.
    reason_column
        Name of the reason column in ``result.quarantine``.
    check_invariants
        Run :func:`check_scd2_invariants` after the commit and raise if it fails.
    txn
        Delta transaction identity of this write (see :mod:`lakehouse.writes.idempotency`): a
        re-run of a batch whose commit already landed is skipped by Delta, and
        ``metrics["already_committed"]`` is 1. (Replays are no-ops without it too, rule 8;
        the identity also makes the commit findable by ``lakehouse rollback``.)
    merge_conf
        Runtime SQL settings the MERGE runs with, put back afterwards (the session's
        configuration is shared, so other threads' queries see them meanwhile). ``None``
        (default): :func:`default_merge_conf`, which lets adaptive execution replace the
        sort-merge join of the MERGE's rewrite with a shuffled hash join when one side's
        partitions are small. ``{}`` runs the MERGE with the session's settings as they are.
    fast_path
        ``True`` (default): a key whose one new event is later than all its stored history
        is decided by comparing the event with its open version, without window functions;
        the other keys go through the chain rebuild. ``False``: every key goes through the
        chain rebuild. The table and the metrics are the same either way.

    Returns
    -------
    SCD2Result

    Raises
    ------
    SCD2SpecError, SCD2SchemaError
        The spec, the change feed and the target do not fit together; nothing is written.
    SCD2ConflictError
        With ``on_conflict="fail"``: different events share one (key, sequence).
    lakehouse.writes.retry.RetryExhaustedError
        Every attempt hit a Delta commit conflict (the last one is its ``__cause__``).
    SCD2InvariantError
        With ``check_invariants``: the table breaks an SCD2 invariant after the commit.

    Examples
    --------
    >>> spec = SCD2Spec(keys=["id"], sequence_by="ts")
    >>> changes = spark.createDataFrame([("a", 1, "x")], "id string, ts int, v string")  # doctest: +SKIP
    >>> res = apply_scd2(spark, path, changes, spec)  # doctest: +SKIP
    >>> res.metrics["inserted"]  # doctest: +SKIP
    1
    """
    check_call(changes, on_conflict, reason_column)
    table = DeltaTableRef.parse(spark, target)
    options = _Options(on_conflict, in_list_limit, reason_column, txn, merge_conf, fast_path)
    result = with_retries(
        lambda: _apply_once(spark, table, changes, spec, options),
        retry,
        f"apply_scd2 into {target}",
    )
    if check_invariants:
        check_scd2_invariants(spark, target, spec, raise_=True)
    return result


def check_call(changes: DataFrame, on_conflict: str, reason_column: str) -> None:
    """The checks every CDC call makes on its options before reading anything."""
    if on_conflict not in ("fail", "quarantine"):
        raise SCD2SpecError(f"on_conflict must be 'fail' or 'quarantine', found {on_conflict!r}")
    validate_identifier(reason_column)
    if reason_column in changes.columns:
        raise SCD2SpecError(
            f"reason_column {reason_column!r} clashes with a change feed column; pick another"
        )


def with_retries(
    attempt: Callable[[], SCD2Result], retry: RetryPolicy | None, describe: str
) -> SCD2Result:
    """Run one CDC call's ``attempt`` under ``retry`` (default :data:`DEFAULT_RETRY`) and
    add the number of retries made to its metrics (``retries``)."""
    retries = [0]

    def count_retry(retry_number: int, exc: BaseException) -> None:
        retries[0] = retry_number

    result = retry_on_conflict(
        attempt, policy=retry or DEFAULT_RETRY, describe=describe, on_retry=count_retry
    )
    return dataclasses.replace(result, metrics={**result.metrics, "retries": retries[0]})


# ---------------------------------------------------------------------------------------
# one attempt, step by step


@dataclass(frozen=True)
class _Options:
    on_conflict: ConflictPolicy
    in_list_limit: int
    reason_column: str
    txn: TxnIdentity | None
    merge_conf: Mapping[str, str] | None
    fast_path: bool


@dataclass
class _Persisted:
    """The frames one attempt persisted, released together when it ends. (The quarantine
    frame stays lazy: it recomputes from ``changes`` when used.)"""

    frames: list[DataFrame] = field(default_factory=list)

    def keep(self, df: DataFrame) -> DataFrame:
        kept = df.persist()
        self.frames.append(kept)
        return kept

    def release(self) -> None:
        for df in self.frames:
            df.unpersist()


@dataclass(frozen=True)
class _Batch:
    """The prepared batch: the feed with reasons and delete flags, its valid rows as
    events, its rejected rows, and its counts."""

    prepared: DataFrame
    keyed: DataFrame
    bad: DataFrame
    rows: int
    n_bad: int
    touched: Touched


@dataclass(frozen=True)
class _Split:
    """The touched keys split between the fast path (decided, with its MERGE rows, log rows
    and counts) and the chain path (its new events, stored versions and logged events, and
    how many keys)."""

    stored: DataFrame
    fast_rows: DataFrame | None
    fast_log: DataFrame | None
    fast_counts: dict[str, int]
    chain_keyed: DataFrame
    chain_stored: DataFrame
    chain_logged: DataFrame | None
    chain_keys: int


@dataclass(frozen=True)
class _Chain:
    """The chain path's outcome: classified rows (None if no key took it), its counts, the
    quarantine (rejected rows plus quarantined conflicts) and how many rows conflicted.
    ``log_all``: every new upsert goes to the event log (the spec has untracked columns)."""

    classified: DataFrame | None
    counts: dict[str, int]
    quarantine: DataFrame
    conflict_rows: int


def _apply_once(
    spark: SparkSession,
    table: DeltaTableRef,
    changes: DataFrame,
    spec: SCD2Spec,
    options: _Options,
) -> SCD2Result:
    exists = table.exists()
    log = log_ref(table)
    version = table.version() if exists else None
    target_df = table.read(version) if exists else None
    lay = resolve_layout(
        changes,
        spec,
        target_df.schema if target_df is not None else None,
        table.properties if exists else dict,
    )
    persisted = _Persisted()
    try:
        batch = _prepare(changes, spec, lay, options, persisted)
        stored = stored_versions(
            target_df, batch.keyed, batch.touched, batch.prepared.schema, lay, spec
        )
        logged = logged_events(log, batch.keyed, batch.touched, lay) if exists else None
        split = _split(spark, batch, stored, logged, lay, spec, options.fast_path, persisted)
        chain = _chain(spark, batch, split, lay, spec, options, persisted)
        metrics = _metrics(batch, split, chain)
        n_writes = metrics["inserted"] + metrics["updated"] + metrics["removed"]
        source = _merge_rows(split, chain, lay, spec)
        _write(spark, table, source, lay, spec, batch.touched, exists, n_writes, options)
        # The log follows the table: a call that fails between the two commits leaves
        # the events unlogged, and its re-run (a replay) logs them.
        if metrics.pop("logged"):
            append_events(log, _log_rows(split, chain, lay))
            expire_events(log, spec.tombstone_retention)  # the log grows only here
        new_version = table.version()
        # With a transaction identity Delta skips a write the same batch already committed.
        attempted = not exists or bool(n_writes)
        committed = attempted and new_version != version
        metrics["committed"] = int(committed)
        metrics["already_committed"] = int(attempted and not committed)
        return SCD2Result(
            metrics=metrics,
            quarantine=chain.quarantine,
            table_version=new_version,
            committed=committed,
            new_columns=lay.new_columns,
        )
    finally:
        persisted.release()


def _partitions(spark: SparkSession, n_keys: int) -> int:
    """Partitions for a frame of ``n_keys`` keys' events. Sized from the batch, not
    spark.sql.shuffle.partitions: a 10k-key batch in 200 (or 8) partitions spends most of
    its time starting tasks."""
    cap = int(spark.conf.get("spark.sql.shuffle.partitions") or 200)
    return max(1, min(cap, -(-n_keys // _KEYS_PER_PARTITION)))


def _prepare(
    changes: DataFrame, spec: SCD2Spec, lay: Layout, options: _Options, persisted: _Persisted
) -> _Batch:
    """Steps 1 and 2: the prepared feed (persisted), its rejected rows and its counts."""
    reason = options.reason_column
    prepared = persisted.keep(prepare_feed(changes, spec, lay, reason))
    rows, n_bad, touched = batch_stats(prepared, lay.keys, reason, options.in_list_limit)
    return _Batch(
        prepared=prepared,
        keyed=keyed_events(prepared.where(F.col(reason) == ""), lay),
        bad=prepared.where(F.col(reason) != "").drop(DEL),
        rows=rows,
        n_bad=n_bad,
        touched=touched,
    )


def _split(
    spark: SparkSession,
    batch: _Batch,
    stored: DataFrame,
    logged: DataFrame | None,
    lay: Layout,
    spec: SCD2Spec,
    fast_path: bool,
    persisted: _Persisted,
) -> _Split:
    """Step 3: decide the keys the fast path can take; the others go to the chain path."""
    n_touched = batch.touched.count
    if not (fast_path and n_touched):
        no_fast = dict.fromkeys(FAST_METRICS, 0)
        return _Split(stored, None, None, no_fast, batch.keyed, stored, logged, n_touched)
    # A key with several events in the batch takes the chain path, which reads its
    # stored versions again: the scan is cached when the batch has clearly more
    # events than keys (the key count may be a ~5% estimate). Otherwise chain keys
    # (late events) are rare and caching would cost every batch more than reading
    # those keys' versions again costs the few batches that have them.
    if batch.rows - batch.n_bad > n_touched * _SEVERAL_EVENTS:
        stored = persisted.keep(stored)
    partitions = _partitions(spark, n_touched)
    summary = persisted.keep(
        per_key(
            batch.keyed, stored, logged, lay, spec, partitions, partial=spec.ignore_null_updates
        )
    )
    log_all = _log_all(lay, spec)
    counts = fast_metrics(summary, lay, log_all=log_all, partial=spec.ignore_null_updates)
    rows = fast_source(summary, lay, spec)
    log_rows = fast_log_rows(summary, lay, log_all=log_all)
    n_chain = counts["chain_keys"]
    if not n_chain:
        return _Split(stored, rows, log_rows, counts, batch.keyed, stored, None, 0)
    chain = summary.where(~F.col("__simple")).select(*[qcol(k) for k in lay.keys])
    if n_chain <= BROADCAST_KEYS:
        chain = F.broadcast(chain)
    keys = list(lay.keys)
    return _Split(
        stored,
        rows,
        log_rows,
        counts,
        batch.keyed.join(chain, keys, "left_semi"),
        stored.join(chain, keys, "left_semi"),
        logged.join(chain, keys, "left_semi") if logged is not None else None,
        n_chain,
    )


def _chain(
    spark: SparkSession,
    batch: _Batch,
    split: _Split,
    lay: Layout,
    spec: SCD2Spec,
    options: _Options,
    persisted: _Persisted,
) -> _Chain:
    """Step 4: rebuild the chains of the chain path's keys; conflicting events fail the
    call or, with ``on_conflict="quarantine"``, are set aside and the rest rebuilt."""
    if split.chain_keys == 0 and options.fast_path:
        return _Chain(None, {}, batch.bad, 0)
    partitions = _partitions(spark, split.chain_keys)

    def classify(new_events: DataFrame) -> tuple[DataFrame, dict[str, int]]:
        # cached, not checkpointed: a lost executor's blocks are recomputed
        partial = spec.ignore_null_updates
        events = chain_events(
            split.chain_stored,
            split.chain_logged,
            new_events,
            lay,
            spec,
            partitions,
            partial=partial,
        )
        classified = persisted.keep(
            classify_chains(events, lay, log_all=_log_all(lay, spec), partial=partial)
        )
        return classified, chain_metrics(classified)

    classified, counts = classify(split.chain_keyed)
    if not counts["conflicts"]:
        return _Chain(classified, counts, batch.bad, 0)
    k_seq = [*lay.keys, SEQ]
    conflicts = classified.where(F.col("__conflict")).select(*k_seq).distinct()
    if options.on_conflict == "fail":
        raise conflict_error(conflicts, lay)
    conflicts = persisted.keep(conflicts)
    conflict_rows = (
        batch.prepared.where(F.col(options.reason_column) == "")
        .withColumn(SEQ, qcol(lay.seq))
        .join(conflicts, k_seq, "left_semi")
        .drop(SEQ, DEL)
        .withColumn(
            options.reason_column,
            F.lit("conflict: different events share key and sequence"),
        )
    )
    n_conflict_rows = conflict_rows.count()
    classified, counts = classify(split.chain_keyed.join(conflicts, k_seq, "left_anti"))
    return _Chain(classified, counts, batch.bad.unionByName(conflict_rows), n_conflict_rows)


def conflict_error(conflicts: DataFrame, lay: Layout) -> SCD2ConflictError:
    """The error naming up to 20 conflicting (key, sequence) pairs."""
    k_seq = [*lay.keys, SEQ]
    sample = conflicts.orderBy(*k_seq).limit(21).collect()
    shown = ", ".join(
        "(" + ", ".join(f"{c}={r[c]!r}" for c in lay.keys) + f", {lay.seq}={r[SEQ]!r})"
        for r in sample[:20]
    )
    more = " and more" if len(sample) > 20 else ""
    return SCD2ConflictError(
        f"{len(sample) if len(sample) <= 20 else '20+'} (key, sequence) pair(s) "
        f"carry different events: {shown}{more}; the table was not changed "
        "(pass on_conflict='quarantine' to set them aside)",
        [tuple(r) for r in sample[:20]],
    )


def _metrics(batch: _Batch, split: _Split, chain: _Chain) -> dict[str, int]:
    """Step 5: every count of the call, fast and chain path added up."""

    def both(name: str) -> int:
        return chain.counts.get(name, 0) + split.fast_counts.get(name, 0)

    return {
        "rows": batch.rows,
        "events": both("events"),
        "duplicates": batch.rows - batch.n_bad - chain.conflict_rows - both("events"),
        "conflicts": chain.conflict_rows,
        "quarantined": batch.n_bad + chain.conflict_rows,
        "inserted": both("inserted"),
        "closed": both("closed"),
        "updated": both("updated"),
        "removed": both("removed"),
        "unchanged": both("unchanged"),
        "deleted": both("deleted"),
        "late": both("late"),
        "touched_keys": both("touched_keys"),
        "fast_path_keys": split.fast_counts["touched_keys"],
        "tombstoned": both("tombstoned"),
        "ignored_null_updates": both("ignored_null_updates"),
        "logged": both("logged"),
    }


def _merge_rows(split: _Split, chain: _Chain, lay: Layout, spec: SCD2Spec) -> DataFrame:
    """The rows to write: the chain path's and the fast path's, in one shape."""
    parts = [
        *(
            [chain_source(chain.classified, lay, spec, partial=spec.ignore_null_updates)]
            if chain.classified is not None
            else []
        ),
        *([split.fast_rows] if split.fast_rows is not None else []),
    ]
    return reduce(lambda a, b: a.unionByName(b), parts) if parts else split.stored.limit(0)


def _log_all(lay: Layout, spec: SCD2Spec) -> bool:
    """Whether every upsert goes to the event log: a version's untracked values are its
    latest event's, and a partial update's NULLs are resolved from the events before it, so
    each event's own values are kept."""
    return bool(lay.untracked) or spec.ignore_null_updates


def _log_rows(split: _Split, chain: _Chain, lay: Layout) -> DataFrame:
    """The events the log must remember: the chain path's and the fast path's."""
    parts = [
        *([chain_log_rows(chain.classified, lay)] if chain.classified is not None else []),
        *([split.fast_log] if split.fast_log is not None else []),
    ]
    return reduce(lambda a, b: a.unionByName(b), parts)


def _write(
    spark: SparkSession,
    table: DeltaTableRef,
    source: DataFrame,
    lay: Layout,
    spec: SCD2Spec,
    touched: Touched,
    exists: bool,
    n_writes: int,
    options: _Options,
) -> None:
    """Step 6: create the table, or MERGE the difference into it (nothing if empty), as
    the batch's transaction identity if it has one."""
    with options.txn.session(spark) if options.txn is not None else nullcontext():
        if not exists:
            table.create(source.where(F.col(spec.is_current).isNotNull()))
        elif n_writes:
            conf = default_merge_conf(spark) if options.merge_conf is None else options.merge_conf
            with session_conf(spark, conf):
                merge_difference(table, source, lay, spec, touched.predicate("t"))
