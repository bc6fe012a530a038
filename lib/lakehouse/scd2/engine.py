"""SCD Type 2 into Delta with AUTO CDC semantics, on any Spark + Delta.

A change feed is a set of events ``(key, sequence, attributes, [delete marker])``. For
every key the table holds the chain of versions obtained by sorting the key's events by
sequence, dropping events that change no tracked column (compared NULL-safely) and giving
each remaining event the half-open interval ``[valid_from, valid_to)`` that ends where the
next version or a delete begins. The current version has ``valid_to`` NULL and
``is_current`` true.

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
   skip files. An empty difference commits nothing, so replaying a batch is a no-op.

Examples
--------
>>> spec = SCD2Spec(keys=["customer_id"], sequence_by="updated_at", delete_when="op = 'D'")
>>> spec.keys
('customer_id',)
>>> SCD2Spec(keys=[], sequence_by="ts")
Traceback (most recent call last):
...
lakehouse.scd2.engine.SCD2SpecError: SCD2Spec.keys: at least one key column is required, found []
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any, Literal

from pyspark.sql import Column, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config import parse_byte_string
from lakehouse.spark.session import session_conf
from lakehouse.spark.sql import quote_identifier, validate_identifier

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakehouse.writes.idempotency import TxnIdentity

__all__ = [
    "SCD2ConflictError",
    "SCD2Error",
    "SCD2InvariantError",
    "SCD2InvariantReport",
    "SCD2Result",
    "SCD2SchemaError",
    "SCD2Spec",
    "SCD2SpecError",
    "apply_scd2",
    "check_scd2_invariants",
    "default_merge_conf",
    "read_as_of",
]

# Internal column names; the leading/trailing double underscores keep them out of the way
# of user columns (a change feed that uses them is rejected).
_SEQ = "__scd2_seq__"
_DEL = "__scd2_del__"
_SRC = "__scd2_src__"
_ACT = "__scd2_act__"
_INTERNAL = (_SEQ, _DEL, _SRC, _ACT)

# Batches touching at most this many keys read the stored rows with a broadcast semi-join.
_BROADCAST_KEYS = 2_000_000
# Touched keys per partition of the event frame (a key has its new events and versions).
_KEYS_PER_PARTITION = 50_000
# Valid rows per touched key above which a batch is taken to have keys with several events.
_SEVERAL_EVENTS = 1.1

# Event origins, also the tie-break order of events with the same (key, sequence).
_SRC_STORED_VERSION = 0
_SRC_STORED_DELETE = 1
_SRC_NEW = 2

ConflictPolicy = Literal["fail", "quarantine"]


class SCD2Error(Exception):
    """Base class of the SCD2 engine's errors."""


class SCD2SpecError(SCD2Error, ValueError):
    """The spec or the change feed does not fit together (names, missing columns)."""


class SCD2SchemaError(SCD2Error, TypeError):
    """A change-feed column cannot be stored in the target's column type."""


class SCD2ConflictError(SCD2Error, ValueError):
    """Different events share one (key, sequence); the table was left unchanged.

    ``conflicts`` holds up to 20 of the offending (key..., sequence) tuples.
    """

    def __init__(self, message: str, conflicts: Sequence[tuple[Any, ...]]) -> None:
        super().__init__(message)
        self.conflicts = tuple(conflicts)


class SCD2InvariantError(SCD2Error, ValueError):
    """A table breaks an SCD2 invariant (raised by ``check_scd2_invariants(raise_=True)``)."""


@dataclass(frozen=True)
class SCD2Spec:
    """What the SCD2 table is keyed, ordered and versioned by.

    Parameters
    ----------
    keys
        Business-key columns (one or more).
    sequence_by
        Column that orders events (timestamp, date or number). Its value becomes
        ``valid_from``; it is not stored as an attribute.
    track
        Columns whose change opens a new version. ``None`` means every attribute column.
        Attribute columns not tracked are updated in place on the version in effect
        (SCD1 behaviour).
    delete_when
        SQL boolean expression over a change row marking deletes, e.g. ``"op = 'D'"``.
        A NULL result counts as not a delete.
    valid_from, valid_to, is_current
        Names of the meta columns in the target.
    except_columns
        Change-feed columns never stored in the target. ``None`` means: the columns that
        ``delete_when`` references, other than keys, the sequence and explicitly tracked
        columns (so ``op`` in ``"op = 'D'"`` is not stored).

    Examples
    --------
    >>> SCD2Spec(keys="id", sequence_by="seq", track=["a"]).track
    ('a',)
    """

    keys: Sequence[str]
    sequence_by: str
    track: Sequence[str] | None = None
    delete_when: str | None = None
    valid_from: str = "valid_from"
    valid_to: str = "valid_to"
    is_current: str = "is_current"
    except_columns: Sequence[str] | None = None

    def __post_init__(self) -> None:
        keys = (self.keys,) if isinstance(self.keys, str) else tuple(self.keys)
        if not keys:
            raise SCD2SpecError(
                f"SCD2Spec.keys: at least one key column is required, found {list(keys)}"
            )
        object.__setattr__(self, "keys", keys)
        if self.track is not None:
            track = (self.track,) if isinstance(self.track, str) else tuple(self.track)
            object.__setattr__(self, "track", track)
        if self.except_columns is not None:
            exc = (
                (self.except_columns,)
                if isinstance(self.except_columns, str)
                else tuple(self.except_columns)
            )
            object.__setattr__(self, "except_columns", exc)
        names = [*keys, self.sequence_by, *self.meta_columns, *(self.track or ())]
        for name in names:
            validate_identifier(name)
        if len({*keys, self.sequence_by, *self.meta_columns}) != len(keys) + 4:
            raise SCD2SpecError(
                "SCD2Spec: keys, sequence_by, valid_from, valid_to and is_current must be "
                f"distinct, found keys={list(keys)}, sequence_by={self.sequence_by!r}, "
                f"meta={list(self.meta_columns)}"
            )
        bad = [c for c in (self.track or ()) if c in keys or c == self.sequence_by]
        if bad:
            raise SCD2SpecError(
                f"SCD2Spec.track: key and sequence columns cannot be tracked, found {bad}"
            )

    @property
    def meta_columns(self) -> tuple[str, str, str]:
        """``(valid_from, valid_to, is_current)``."""
        return (self.valid_from, self.valid_to, self.is_current)


@dataclass(frozen=True)
class SCD2Result:
    """Outcome of :func:`apply_scd2`.

    ``metrics`` keys: ``events`` (valid change rows), ``duplicates`` (exact duplicates
    dropped), ``conflicts`` (quarantined by the ``quarantine`` policy), ``quarantined``,
    ``inserted`` (version rows added), ``closed`` (versions whose ``valid_to`` this call
    set), ``updated`` (stored rows rewritten), ``removed`` (stored rows coalesced away),
    ``unchanged`` (events that changed no tracked column), ``deleted`` (deletes that
    closed a version), ``late`` (new events older than the key's latest stored sequence),
    ``touched_keys``, ``fast_path_keys`` (of those, the keys decided without windows),
    ``retries`` and ``committed`` (1 if a Delta commit was made).
    """

    metrics: Mapping[str, int]
    quarantine: DataFrame
    table_version: int | None
    committed: bool = False
    new_columns: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class SCD2InvariantReport:
    """Violations found by :func:`check_scd2_invariants`, as counts of offending rows."""

    violations: Mapping[str, int]
    rows: int

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())


# ---------------------------------------------------------------------------------------
# target handling (path or table name)


@dataclass(frozen=True)
class _Target:
    spark: SparkSession
    name: str

    @property
    def is_path(self) -> bool:
        return "/" in self.name or ":" in self.name

    def exists(self) -> bool:
        from delta.tables import DeltaTable

        if self.is_path:
            return bool(DeltaTable.isDeltaTable(self.spark, self.name))
        return bool(self.spark.catalog.tableExists(self.name))

    def delta_table(self) -> Any:
        from delta.tables import DeltaTable

        if self.is_path:
            return DeltaTable.forPath(self.spark, self.name)
        return DeltaTable.forName(self.spark, self.name)

    def read(self, version: int | None = None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if self.is_path:
            return reader.load(self.name)
        if version is None:
            return self.spark.read.table(self.name)
        return reader.table(self.name)

    def version(self) -> int | None:
        """The latest committed version, or None if there is no table.

        Read from the snapshot Delta loaded to open the table (its JVM ``DeltaLog``), which
        costs no Spark job; ``history(1)`` (a job) where that handle is not reachable."""
        if not self.exists():
            return None
        from py4j.protocol import Py4JError

        dt = self.delta_table()
        try:
            return int(dt._jdt.deltaLog().unsafeVolatileSnapshot().version())
        except (AttributeError, Py4JError):  # the handle is Delta-internal: public API instead
            row = dt.history(1).select("version").first()
            return None if row is None else int(row["version"])

    def properties(self) -> dict[str, str]:
        row = self.delta_table().detail().select("properties").first()
        return dict(row["properties"] or {}) if row is not None else {}

    def create(self, df: DataFrame) -> None:
        writer = df.write.format("delta").mode("errorifexists")
        if self.is_path:
            writer.save(self.name)
        else:
            for part in self.name.split("."):
                validate_identifier(part)
            writer.saveAsTable(self.name)


def _concurrent_exceptions() -> tuple[type[BaseException], ...]:
    from delta.exceptions import (
        ConcurrentAppendException,
        ConcurrentDeleteDeleteException,
        ConcurrentDeleteReadException,
        ConcurrentTransactionException,
        ConcurrentWriteException,
        DeltaConcurrentModificationException,
        MetadataChangedException,
        ProtocolChangedException,
    )

    return (
        ConcurrentAppendException,
        ConcurrentDeleteDeleteException,
        ConcurrentDeleteReadException,
        ConcurrentTransactionException,
        ConcurrentWriteException,
        DeltaConcurrentModificationException,
        MetadataChangedException,
        ProtocolChangedException,
    )


# ---------------------------------------------------------------------------------------
# small column helpers


def _c(name: str, alias: str | None = None) -> Column:
    q = quote_identifier(name)
    return F.col(f"{alias}.{q}" if alias else q)


def _all(cols: Sequence[Column]) -> Column:
    return reduce(lambda a, b: a & b, cols) if cols else F.lit(True)


def _any(cols: Sequence[Column]) -> Column:
    return reduce(lambda a, b: a | b, cols) if cols else F.lit(False)


def _same(a: Column, b: Column) -> Column:
    """NULL-safe equality."""
    return a.eqNullSafe(b)


_INTEGRAL_RANK = {"tinyint": 1, "smallint": 2, "int": 3, "bigint": 4}


def _upcasts_to(src: T.DataType, dst: T.DataType) -> bool:
    """True if every value of ``src`` is representable in ``dst`` (a lossless cast)."""
    if src == dst or isinstance(src, T.NullType):
        return True
    s, d = src.simpleString(), dst.simpleString()
    if s in _INTEGRAL_RANK and d in _INTEGRAL_RANK:
        return _INTEGRAL_RANK[s] <= _INTEGRAL_RANK[d]
    if s in ("tinyint", "smallint", "int", "float") and d == "double":
        return True
    if isinstance(src, T.DecimalType) and isinstance(dst, T.DecimalType):
        return src.scale <= dst.scale and src.precision - src.scale <= dst.precision - dst.scale
    if s in _INTEGRAL_RANK and isinstance(dst, T.DecimalType):
        digits = {"tinyint": 3, "smallint": 5, "int": 10, "bigint": 20}[s]
        return dst.precision - dst.scale >= digits
    return False


def _merge_widens_types(df: DataFrame) -> bool:
    """Whether this Delta widens a column type in a MERGE with schema evolution: Delta 4.x,
    which pairs with Spark 4 (Delta 3.x, on Spark 3.5, fails the write with a cast
    overflow instead)."""
    return int(df.sparkSession.version.split(".")[0]) >= 4


# ---------------------------------------------------------------------------------------
# column resolution


@dataclass(frozen=True)
class _Layout:
    keys: tuple[str, ...]
    seq: str
    attrs: tuple[str, ...]  # stored attribute columns, target order then new ones
    tracked: tuple[str, ...]
    untracked: tuple[str, ...]
    excluded: tuple[str, ...]
    new_columns: tuple[str, ...]
    casts: dict[str, T.DataType]
    widened: tuple[str, ...] = ()  # target columns Delta's type widening changes in the MERGE


_SQL_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_SQL_NAME = re.compile(r"`((?:[^`]|``)+)`|([A-Za-z_][A-Za-z0-9_]*)")


def _delete_only_columns(changes: DataFrame, spec: SCD2Spec) -> tuple[str, ...]:
    """Change-feed columns named in ``delete_when`` (outside string literals).

    Examples
    --------
    >>> _SQL_NAME.findall(_SQL_STRING.sub("", "op = 'D' OR `is del`"))
    [('', 'op'), ('', 'OR'), ('is del', '')]
    """
    if spec.delete_when is None:
        return ()
    protected = {c.lower() for c in (*spec.keys, spec.sequence_by, *(spec.track or ()))}
    names = {
        (quoted.replace("``", "`") if quoted else plain).lower()
        for quoted, plain in _SQL_NAME.findall(_SQL_STRING.sub(" ", spec.delete_when))
    }
    return tuple(c for c in changes.columns if c.lower() in names and c.lower() not in protected)


def _resolve(
    changes: DataFrame,
    spec: SCD2Spec,
    target_schema: T.StructType | None,
    props: Callable[[], dict[str, str]],
) -> _Layout:
    from pyspark.errors import AnalysisException

    cols = changes.columns
    missing = [c for c in (*spec.keys, spec.sequence_by) if c not in cols]
    if missing:
        raise SCD2SpecError(f"change feed lacks key/sequence column(s) {missing}; it has {cols}")
    clash = [c for c in cols if c in spec.meta_columns or c in _INTERNAL]
    if clash:
        raise SCD2SpecError(
            f"change feed must not contain meta column(s) {clash}; "
            f"they are written by the engine (meta columns: {list(spec.meta_columns)})"
        )
    for c in cols:
        validate_identifier(c)
    if spec.delete_when is not None:
        try:
            dtype = changes.select(F.expr(spec.delete_when).alias("d")).schema["d"].dataType
        except AnalysisException as exc:
            raise SCD2SpecError(
                f"SCD2Spec.delete_when {spec.delete_when!r} does not resolve against the "
                f"change feed columns {cols}"
            ) from exc
        if not isinstance(dtype, T.BooleanType):
            raise SCD2SpecError(
                f"SCD2Spec.delete_when must be boolean, found {dtype.simpleString()} "
                f"for {spec.delete_when!r}"
            )
    if spec.except_columns is not None:
        unknown = [c for c in spec.except_columns if c not in cols]
        if unknown:
            raise SCD2SpecError(
                f"SCD2Spec.except_columns {unknown} are not in the change feed {cols}"
            )
        excluded = tuple(spec.except_columns)
    else:
        excluded = _delete_only_columns(changes, spec)
    feed_attrs = [c for c in cols if c not in (*spec.keys, spec.sequence_by, *excluded)]
    if spec.track is not None:
        unknown = [c for c in spec.track if c not in feed_attrs]
        if unknown:
            raise SCD2SpecError(
                f"SCD2Spec.track {unknown} are not attribute columns of the change feed "
                f"(attributes: {feed_attrs})"
            )
    casts: dict[str, T.DataType] = {}
    new_columns: tuple[str, ...] = ()
    widened: list[str] = []
    attrs: list[str] = list(feed_attrs)
    if target_schema is not None:
        tcols = {f.name: f.dataType for f in target_schema.fields}
        need = [*spec.keys, *spec.meta_columns]
        lacking = [c for c in need if c not in tcols]
        if lacking:
            raise SCD2SpecError(f"target lacks SCD2 column(s) {lacking}; it has {list(tcols)}")
        target_attrs = [c for c in tcols if c not in (*spec.keys, *spec.meta_columns)]
        absent = [c for c in target_attrs if c not in feed_attrs]
        if absent:
            raise SCD2SpecError(
                f"change feed lacks target attribute column(s) {absent}; "
                f"feed attributes: {feed_attrs}"
            )
        new_columns = tuple(c for c in feed_attrs if c not in tcols)
        attrs = [*target_attrs, *new_columns]
        feed_types = {f.name: f.dataType for f in changes.schema.fields}
        pairs = [(c, c) for c in (*spec.keys, *target_attrs)]
        pairs.append((spec.sequence_by, spec.valid_from))
        for feed_col, tcol in pairs:
            src, dst = feed_types[feed_col], tcols[tcol]
            if src == dst:
                continue
            if _upcasts_to(src, dst):
                casts[feed_col] = dst
            elif (
                _upcasts_to(dst, src)
                and feed_col != spec.sequence_by
                and props().get("delta.enableTypeWidening", "false").lower() == "true"
            ):
                if not _merge_widens_types(changes):
                    raise SCD2SchemaError(
                        f"column {feed_col!r}: change feed type {src.simpleString()} is wider "
                        f"than target column {tcol!r} of type {dst.simpleString()}; the "
                        "table allows type widening, but Delta before 4.0 does not widen a "
                        "column in a MERGE: widen it first (ALTER TABLE ... ALTER COLUMN ... "
                        "TYPE) or cast the change feed"
                    )
                widened.append(tcol)  # Delta's type widening changes the type in the MERGE
                continue
            else:
                raise SCD2SchemaError(
                    f"column {feed_col!r}: change feed type {src.simpleString()} cannot be "
                    f"stored in target column {tcol!r} of type {dst.simpleString()} "
                    "(not a widening the table allows); cast the change feed or widen the "
                    "target column (Delta type widening: delta.enableTypeWidening)"
                )
    tracked = tuple(spec.track) if spec.track is not None else tuple(attrs)
    untracked = tuple(c for c in attrs if c not in tracked)
    return _Layout(
        keys=tuple(spec.keys),
        seq=spec.sequence_by,
        attrs=tuple(attrs),
        tracked=tracked,
        untracked=untracked,
        excluded=excluded,
        new_columns=new_columns,
        casts=casts,
        widened=tuple(widened),
    )


# ---------------------------------------------------------------------------------------
# the engine


@dataclass(frozen=True)
class _Touched:
    """Literal bounds of the touched keys: min/max per key column, the values when few."""

    count: int
    bounds: dict[str, tuple[Any, Any]]
    values: list[Any] | None

    def predicate(self, alias: str | None) -> Column:
        if self.count == 0:
            return F.lit(False)
        preds = [_c(k, alias).between(F.lit(lo), F.lit(hi)) for k, (lo, hi) in self.bounds.items()]
        if self.values is not None:
            (key,) = self.bounds
            preds.append(_c(key, alias).isin(self.values))
        return _all(preds)


def _batch_stats(
    prepared: DataFrame, keys: Sequence[str], reason_column: str, in_list_limit: int
) -> tuple[int, int, _Touched]:
    """One pass over the batch: row count, rejected rows, an estimate of the touched keys
    (HyperLogLog, ~5%) and their min/max per key column; a global aggregate without a
    distinct, so one stage. The key values themselves are collected only when a single key
    column may have at most ``in_list_limit`` of them (then counted exactly)."""
    valid = F.col(reason_column) == ""
    key = _c(keys[0]) if len(keys) == 1 else F.struct(*[_c(k) for k in keys])
    aggs = [
        F.count(F.lit(1)).alias("__rows"),
        F.sum((~valid).cast("int")).alias("__bad"),
        F.approx_count_distinct(F.when(valid, key)).alias("__n"),
    ]
    for i, k in enumerate(keys):
        aggs += [
            F.min(F.when(valid, _c(k))).alias(f"__lo{i}"),
            F.max(F.when(valid, _c(k))).alias(f"__hi{i}"),
        ]
    row = prepared.agg(*aggs).first()
    if row is None:  # pragma: no cover - a global aggregate always returns one row
        return 0, 0, _Touched(0, {}, None)
    rows, bad, n = int(row["__rows"] or 0), int(row["__bad"] or 0), int(row["__n"] or 0)
    if n == 0:
        return rows, bad, _Touched(0, {}, None)
    bounds = {k: (row[f"__lo{i}"], row[f"__hi{i}"]) for i, k in enumerate(keys)}
    values = None
    if len(keys) == 1 and n <= in_list_limit * 1.2:  # the estimate's error is ~5%
        found = [
            r[0]
            for r in prepared.where(valid)
            .select(_c(keys[0]))
            .distinct()
            .limit(in_list_limit + 1)
            .collect()
        ]
        if len(found) <= in_list_limit:
            values, n = found, len(found)
    return rows, bad, _Touched(n, bounds, values)


def _events(
    stored: DataFrame, new: DataFrame, lay: _Layout, spec: SCD2Spec, partitions: int
) -> DataFrame:
    """Stored versions and new events of the touched keys as one event frame.

    A stored version is an event at its ``valid_from`` that remembers its stored
    ``valid_to`` / ``is_current`` and untracked values (``__s_*``) for the diff; a closed
    version with no stored successor starting at its ``valid_to`` also yields a delete
    event there. Exact duplicate new events are dropped.

    The frame is hash-partitioned by the keys into ``partitions`` partitions once; every
    window here and in :func:`_classify` is partitioned by the keys, so Spark shuffles
    nothing else. Duplicates are found in the same sort order as the chain (sequence,
    origin, kind, then attributes), so they need no window of their own.
    """
    keys = [_c(k) for k in lay.keys]
    vf_type = stored.schema[spec.valid_from].dataType
    extra = {
        "__svt": (_c(spec.valid_to), F.lit(None).cast(vf_type)),
        "__sic": (_c(spec.is_current), F.lit(None).cast("boolean")),
        **{f"__s_{u}": (_c(u), F.lit(None).cast(stored.schema[u].dataType)) for u in lay.untracked},
    }
    versions = stored.select(
        *keys,
        _c(spec.valid_from).alias(_SEQ),
        F.lit(False).alias(_DEL),
        F.lit(_SRC_STORED_VERSION).alias(_SRC),
        *[_c(a) for a in lay.attrs],
        *[col.alias(name) for name, (col, _) in extra.items()],
    )
    new_ev = new.select(
        *keys,
        F.col(_SEQ),
        F.col(_DEL),
        F.lit(_SRC_NEW).alias(_SRC),
        *[_c(a) for a in lay.attrs],
        *[none.alias(name) for name, (_, none) in extra.items()],
    )
    both = versions.unionByName(new_ev).repartition(partitions, *keys)
    # One window order for this step: exact duplicates (same key, sequence, origin, kind
    # and delete-masked attributes) are adjacent in it, the first is kept.
    same = [F.col(_SEQ), F.col(_SRC), F.col(_DEL), *[_c(a) for a in lay.attrs]]
    wd = Window.partitionBy(*keys).orderBy(*same)
    next_stored = F.first(
        F.when(F.col(_SRC) == _SRC_STORED_VERSION, F.col(_SEQ)), ignorenulls=True
    ).over(wd.rowsBetween(1, Window.unboundedFollowing))
    closes = (
        (F.col(_SRC) == _SRC_STORED_VERSION)
        & F.col("__svt").isNotNull()
        & (next_stored.isNull() | (next_stored != F.col("__svt")))
    )
    both = both.withColumns(
        {"__dup": _all([_same(c, F.lag(c).over(wd)) for c in same]), "__closes": closes}
    ).where(~F.col("__dup"))
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
        pick(_SEQ, F.col("__svt")),
        pick(_DEL, F.lit(True)),
        pick(_SRC, F.lit(_SRC_STORED_DELETE)),
        *[pick(a, F.lit(None).cast(gen.schema[a].dataType)) for a in lay.attrs],
        *[pick(name, none) for name, (_, none) in extra.items()],
    ]
    return gen.select(*cols)


def _classify(events: DataFrame, lay: _Layout) -> DataFrame:
    """Rebuild the chains and mark each row: opens a version, closes one (effective
    delete), is a late or conflicting new event, and what the MERGE must do (``_ACT``).

    Every window has the same partitioning and order (keys; sequence, origin), so Spark
    sorts once and runs two window operators (three with untracked columns); columns are
    added a few at a time (``withColumns``) because each DataFrame step is analysed anew
    on the driver, which on this plan costs more than the work on 10k rows."""
    keys = [_c(k) for k in lay.keys]
    order = [F.col(_SEQ), F.col(_SRC)]
    w = Window.partitionBy(*keys).orderBy(*order)
    prev_exists = F.lag(F.lit(1)).over(w).isNotNull()
    prev_del = F.coalesce(F.lag(F.col(_DEL)).over(w), F.lit(False))
    changed = _any([~_same(_c(t), F.lag(_c(t)).over(w)) for t in lay.tracked])
    is_new = F.col(_SRC) == _SRC_NEW
    # The stored event at this row's sequence, if any: stored rows sort before new ones at
    # one sequence, and a key has at most one stored event per sequence.
    last_stored = F.last(
        F.when(
            ~is_new,
            F.struct(
                F.col(_SEQ).alias("s"),
                F.col(_DEL).alias("d"),
                *[_c(t).alias(f"t{i}") for i, t in enumerate(lay.tracked)],
            ),
        ),
        ignorenulls=True,
    ).over(w.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    stored_here = last_stored.isNotNull() & (last_stored["s"] == F.col(_SEQ))
    # Conflict: another new event at this (key, seq) (distinct after deduplication, and
    # adjacent in this order), or a new event contradicting the stored event there (other
    # kind or tracked values).
    new_neighbour = _any(
        [
            (f(F.col(_SRC)).over(w) == _SRC_NEW) & (f(F.col(_SEQ)).over(w) == F.col(_SEQ))
            for f in (F.lag, F.lead)
        ]
    )
    contradict = stored_here & (
        (last_stored["d"] != F.col(_DEL))
        | (
            ~F.col(_DEL)
            & ~_all([_same(last_stored[f"t{i}"], _c(t)) for i, t in enumerate(lay.tracked)])
        )
    )
    stored_max = F.max(F.when(~is_new, F.col(_SEQ))).over(
        w.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    )
    out = events.withColumns(
        {
            "__first": ~prev_exists,
            "__open": ~F.col(_DEL) & (~prev_exists | prev_del | changed),
            "__effdel": F.col(_DEL) & prev_exists & ~prev_del,
            "__conflict": is_new & (new_neighbour | contradict),
            "__late": is_new & (F.col(_SEQ) < stored_max) & ~stored_here,
        }
    )
    boundary = F.col("__open") | F.col("__effdel")
    out = out.withColumns(
        {
            "__boundary": boundary,
            "__grp": F.sum(boundary.cast("int")).over(
                w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
            ),
            "__vt": F.first(F.when(boundary, F.col(_SEQ)), True).over(
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
        out = out.withColumns({u: F.last(_c(u)).over(wg) for u in lay.untracked})
    # What the MERGE does: a new event that opens a version is inserted; a stored version
    # that no longer opens one (coalesced) is deleted; one that still does is updated if
    # its end, current flag or (in place) untracked values changed.
    stored_version = F.col(_SRC) == _SRC_STORED_VERSION
    new_ic = F.col("__vt").isNull()
    differs = _any(
        [
            ~_same(F.col("__svt"), F.col("__vt")),
            ~_same(F.col("__sic"), new_ic),
            *[~_same(F.col(f"__s_{u}"), _c(u)) for u in lay.untracked],
        ]
    )
    act = (
        F.when(is_new & F.col("__open"), F.lit("insert"))
        .when(stored_version & ~F.col("__open"), F.lit("delete"))
        .when(stored_version & differs, F.lit("update"))
    )
    return out.withColumn(_ACT, act)


def _merge_source(classified: DataFrame, lay: _Layout, spec: SCD2Spec) -> DataFrame:
    """Rows to write; delete rows carry NULL ``is_current`` so the MERGE can tell them
    apart without an extra source column."""
    return classified.where(F.col(_ACT).isNotNull()).select(
        *[_c(k) for k in lay.keys],
        *[_c(a) for a in lay.attrs],
        F.col(_SEQ).alias(spec.valid_from),
        F.col("__vt").alias(spec.valid_to),
        F.when(F.col(_ACT) != "delete", F.col("__vt").isNull()).alias(spec.is_current),
    )


# ---------------------------------------------------------------------------------------
# the fast path: keys whose one new event is newer than all their stored history

#: Counts the fast path contributes to a call's metrics (the chain path adds its own).
_FAST_METRICS = (
    "touched_keys",
    "events",
    "inserted",
    "closed",
    "updated",
    "unchanged",
    "deleted",
    "chain_keys",
)


def _per_key(
    keyed: DataFrame, stored: DataFrame, lay: _Layout, spec: SCD2Spec, partitions: int
) -> DataFrame:
    """One row per touched key: its new events (deduplicated) and its stored history, summed
    up, and whether the key takes the fast path (``__simple``).

    A key is simple when, after exact duplicates are dropped, it has one new event whose
    sequence is later than every stored ``valid_from`` and ``valid_to`` of the key, and
    the key has at most one open version, the latest. The chain model then reduces to
    comparing the event with that open version (``__c``): the event cannot be late,
    cannot conflict and cannot split or coalesce anything, so no window is needed. What
    the MERGE must do for such a key is decided by the flags ``__close`` (end the open
    version at the event), ``__upd`` (same tracked values: write the event's untracked
    values into the open version) and ``__ins`` (the event opens a version).
    """
    keys = [_c(k) for k in lay.keys]
    vf, vt = _c(spec.valid_from), _c(spec.valid_to)
    attrs = [_c(a) for a in lay.attrs]
    # New events and stored versions in one frame, shuffled by key once and grouped in
    # one aggregation. Exact duplicates are equal structs, so a key has one distinct new
    # event iff the least and greatest of its events are equal (NULL-safe, as in dedup).
    new_ev = keyed.select(
        *keys,
        F.struct(F.col(_SEQ), F.col(_DEL), *attrs).alias("__e"),
        F.lit(None).cast(stored.schema[spec.valid_from].dataType).alias("__vf"),
        F.lit(None).cast(stored.schema[spec.valid_to].dataType).alias("__vt"),
        F.lit(None).alias("__c"),
    )
    versions = stored.select(
        *keys,
        F.lit(None).alias("__e"),
        vf.alias("__vf"),
        vt.alias("__vt"),
        F.when(vt.isNull(), F.struct(vf.alias(_SEQ), *attrs)).alias("__c"),
    )
    is_version = F.col("__vf").isNotNull()
    both = versions.unionByName(new_ev, allowMissingColumns=False)
    e_min, e_max = F.min("__e"), F.max("__e")
    per_key = (
        both.repartition(partitions, *keys)
        .groupBy(*keys)
        .agg(
            e_min.alias("__e"),
            _same(e_min, e_max).alias("__one"),
            F.count(F.when(is_version & F.col("__vt").isNull(), F.lit(1))).alias("__nc"),
            F.max("__vf").alias("__mvf"),
            F.max("__vt").alias("__mvt"),
            F.first("__c", ignorenulls=True).alias("__c"),
        )
    )
    e, c = F.col("__e"), F.col("__c")
    seq = e[_SEQ]
    simple = (
        F.col("__one")
        & (F.col("__nc") <= 1)
        & (F.col("__mvf").isNull() | (F.col("__mvf") < seq))
        & (F.col("__mvt").isNull() | (F.col("__mvt") < seq))
        & (c.isNull() | (c[_SEQ] == F.col("__mvf")))
    )
    has_c, is_del = c.isNotNull(), e[_DEL]
    changed = _any([~_same(e[t], c[t]) for t in lay.tracked])
    untracked_changed = _any([~_same(e[u], c[u]) for u in lay.untracked])
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


def _fast_metrics(per_key: DataFrame) -> dict[str, int]:
    """The fast path's counts, in the chain path's terms (one aggregation)."""

    def n(name: str) -> Column:
        return F.sum(F.col(name).cast("int"))

    row = per_key.agg(
        n("__simple").alias("touched_keys"),
        n("__ins").alias("inserted"),
        n("__close").alias("closed"),
        (n("__close") + n("__upd")).alias("updated"),
        n("__unch").alias("unchanged"),
        n("__del").alias("deleted"),
        F.sum((~F.col("__simple")).cast("int")).alias("chain_keys"),
    ).first()
    got = row.asDict() if row is not None else {}
    out = {k: int(got.get(k) or 0) for k in _FAST_METRICS}
    out["events"] = out["touched_keys"]  # one event per simple key
    return out


def _fast_source(per_key: DataFrame, lay: _Layout, spec: SCD2Spec) -> DataFrame:
    """MERGE rows of the simple keys, in :func:`_merge_source`'s shape: the open version
    (ended at the event, or with the event's untracked values) and the event's version."""
    e, c = F.col("__e"), F.col("__c")
    vf_type = per_key.schema["__e"].dataType[_SEQ].dataType  # type: ignore[index]
    keys = [_c(k).alias(k) for k in lay.keys]

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
        c[_SEQ],
        F.when(F.col("__close"), e[_SEQ]),
        ~F.col("__close"),
    )
    event_row = row([e[a] for a in lay.attrs], e[_SEQ], F.lit(None), F.lit(True))
    rows = F.array(
        F.when(F.col("__close") | F.col("__upd"), stored_row),
        F.when(F.col("__ins"), event_row),
    )
    return (
        per_key.where(F.col("__simple"))
        .select(F.inline(F.filter(rows, lambda r: r.isNotNull())))
        .select(
            *[_c(k) for k in lay.keys],
            *[_c(a) for a in lay.attrs],
            *[_c(m) for m in spec.meta_columns],
        )
    )


def _metrics_row(classified: DataFrame) -> Any:
    """Every count of a call, in one aggregation."""
    is_new = F.col(_SRC) == _SRC_NEW
    act = F.col(_ACT)

    def n(cond: Column) -> Column:
        return F.sum(cond.cast("int"))

    return classified.agg(
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
    ).first()


def apply_scd2(
    spark: SparkSession,
    target: str,
    changes: DataFrame,
    spec: SCD2Spec,
    *,
    on_conflict: ConflictPolicy = "fail",
    max_retries: int = 3,
    retry_backoff_s: float = 0.5,
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
    max_retries
        How often a Delta concurrent-modification conflict is retried (the whole batch is
        recomputed against the new table version) before it is raised.
    retry_backoff_s
        Base of the linear back-off between retries.
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

    Examples
    --------
    >>> spec = SCD2Spec(keys=["id"], sequence_by="ts")
    >>> changes = spark.createDataFrame([("a", 1, "x")], "id string, ts int, v string")
    >>> res = apply_scd2(spark, path, changes, spec)  # doctest: +SKIP
    >>> res.metrics["inserted"]  # doctest: +SKIP
    1
    """
    if on_conflict not in ("fail", "quarantine"):
        raise SCD2SpecError(f"on_conflict must be 'fail' or 'quarantine', found {on_conflict!r}")
    if max_retries < 0:
        raise SCD2SpecError(f"max_retries must be >= 0, found {max_retries}")
    validate_identifier(reason_column)
    if reason_column in changes.columns:
        raise SCD2SpecError(
            f"reason_column {reason_column!r} clashes with a change feed column; pick another"
        )
    tgt = _Target(spark, target)
    retryable = _concurrent_exceptions()
    attempt = 0
    while True:
        try:
            result = _apply_once(
                spark,
                tgt,
                changes,
                spec,
                on_conflict,
                in_list_limit,
                reason_column,
                txn,
                default_merge_conf(spark) if merge_conf is None else dict(merge_conf),
                fast_path,
            )
        except retryable:
            if attempt >= max_retries:
                raise
            attempt += 1
            time.sleep(retry_backoff_s * attempt)
            continue
        break
    metrics = dict(result.metrics)
    metrics["retries"] = attempt
    if check_invariants:
        check_scd2_invariants(spark, target, spec, raise_=True)
    return SCD2Result(
        metrics=metrics,
        quarantine=result.quarantine,
        table_version=result.table_version,
        committed=result.committed,
        new_columns=result.new_columns,
    )


def _apply_once(
    spark: SparkSession,
    tgt: _Target,
    changes: DataFrame,
    spec: SCD2Spec,
    on_conflict: ConflictPolicy,
    in_list_limit: int,
    reason_column: str,
    txn: TxnIdentity | None,
    merge_conf: Mapping[str, str],
    fast_path: bool,
) -> SCD2Result:
    exists = tgt.exists()
    version = tgt.version() if exists else None
    target_df = tgt.read(version) if exists else None
    lay = _resolve(
        changes,
        spec,
        target_df.schema if target_df is not None else None,
        tgt.properties if exists else dict,
    )

    feed = changes
    for col, dtype in lay.casts.items():
        feed = feed.withColumn(col, _c(col).cast(dtype))
    is_del = (
        F.coalesce(F.expr(spec.delete_when), F.lit(False))
        if spec.delete_when is not None
        else F.lit(False)
    )
    null_reason = F.concat_ws(
        "; ",
        *[F.when(_c(k).isNull(), F.lit(f"null key: {k}")) for k in lay.keys],
        F.when(_c(lay.seq).isNull(), F.lit(f"null sequence: {lay.seq}")),
    )
    prepared = feed.withColumn(reason_column, null_reason).withColumn(_DEL, is_del)
    prepared = prepared.persist()
    cached: list[DataFrame] = [prepared]
    try:
        bad = prepared.where(F.col(reason_column) != "").drop(_DEL)
        valid = prepared.where(F.col(reason_column) == "")
        keyed = valid.select(
            *[_c(k) for k in lay.keys],
            _c(lay.seq).alias(_SEQ),
            F.col(_DEL),
            # deletes are equal whatever their payload
            *[F.when(~F.col(_DEL), _c(a)).alias(a) for a in lay.attrs],
        )
        n_rows, n_bad, bounds = _batch_stats(prepared, lay.keys, reason_column, in_list_limit)
        n_touched = bounds.count

        key_cols = [_c(k) for k in lay.keys]
        touched = keyed.select(*key_cols)
        if n_touched <= _BROADCAST_KEYS:
            # Without the hint Spark plans a sort-merge semi-join (the batch's size is not
            # known at planning) and shuffles the whole table to find the touched keys.
            touched = F.broadcast(touched)
        if target_df is not None and n_touched:
            stored = target_df.where(bounds.predicate(None)).join(
                touched, list(lay.keys), "left_semi"
            )
        else:
            schema = T.StructType(
                [
                    *[T.StructField(k, feed.schema[k].dataType) for k in lay.keys],
                    *[T.StructField(a, feed.schema[a].dataType) for a in lay.attrs],
                    T.StructField(spec.valid_from, feed.schema[lay.seq].dataType),
                    T.StructField(spec.valid_to, feed.schema[lay.seq].dataType),
                    T.StructField(spec.is_current, T.BooleanType()),
                ]
            )
            stored = spark.createDataFrame([], schema)
        # new columns from schema evolution are NULL in stored rows
        for c in lay.new_columns:
            stored = stored.withColumn(c, F.lit(None).cast(feed.schema[c].dataType))

        # Sized from the batch, not spark.sql.shuffle.partitions: a 10k-key batch in 200
        # (or 8) partitions spends most of its time starting tasks.
        cap = int(spark.conf.get("spark.sql.shuffle.partitions") or 200)

        def n_partitions(n_keys: int) -> int:
            return max(1, min(cap, -(-n_keys // _KEYS_PER_PARTITION)))

        fast_source: DataFrame | None = None
        fm: dict[str, int] = dict.fromkeys(_FAST_METRICS, 0)
        chain_keyed, chain_stored, n_chain = keyed, stored, n_touched
        if fast_path and n_touched:
            # A key with several events in the batch takes the chain path, which reads its
            # stored versions again: the scan is cached when the batch has clearly more
            # events than keys (the key count may be a ~5% estimate). Otherwise chain keys
            # (late events) are rare and caching would cost every batch more than reading
            # those keys' versions again costs the few batches that have them.
            if n_rows - n_bad > n_touched * _SEVERAL_EVENTS:
                stored = stored.persist()
                cached.append(stored)
            per_key = _per_key(keyed, stored, lay, spec, n_partitions(n_touched)).persist()
            cached.append(per_key)
            fm = _fast_metrics(per_key)
            fast_source = _fast_source(per_key, lay, spec)
            n_chain = fm["chain_keys"]
            if n_chain:
                chain = per_key.where(~F.col("__simple")).select(*key_cols)
                if n_chain <= _BROADCAST_KEYS:
                    chain = F.broadcast(chain)
                chain_keyed = keyed.join(chain, list(lay.keys), "left_semi")
                chain_stored = stored.join(chain, list(lay.keys), "left_semi")

        def classify(new_events: DataFrame) -> tuple[DataFrame, Any]:
            # cached, not checkpointed: a lost executor's blocks are recomputed
            events = _events(chain_stored, new_events, lay, spec, n_partitions(n_chain))
            out = _classify(events, lay).persist()
            cached.append(out)
            return out, _metrics_row(out)

        k_seq = [*lay.keys, _SEQ]
        classified: DataFrame | None = None
        m: Any = None
        n_conflict_rows = 0
        if n_chain or not fast_path:
            classified, m = classify(chain_keyed)
        if classified is not None and m is not None and m["conflicts"]:
            conflicts = classified.where(F.col("__conflict")).select(*k_seq).distinct()
            if on_conflict == "fail":
                sample = conflicts.orderBy(*k_seq).limit(21).collect()
                shown = ", ".join(
                    "(" + ", ".join(f"{c}={r[c]!r}" for c in lay.keys) + f", {lay.seq}={r[_SEQ]!r})"
                    for r in sample[:20]
                )
                more = " and more" if len(sample) > 20 else ""
                raise SCD2ConflictError(
                    f"{len(sample) if len(sample) <= 20 else '20+'} (key, sequence) pair(s) "
                    f"carry different events: {shown}{more}; the table was not changed "
                    "(pass on_conflict='quarantine' to set them aside)",
                    [tuple(r) for r in sample[:20]],
                )
            conflicts = conflicts.persist()
            cached.append(conflicts)
            conflict_rows = (
                prepared.where(F.col(reason_column) == "")
                .withColumn(_SEQ, _c(lay.seq))
                .join(conflicts, k_seq, "left_semi")
                .drop(_SEQ, _DEL)
                .withColumn(
                    reason_column,
                    F.lit("conflict: different events share key and sequence"),
                )
            )
            bad = bad.unionByName(conflict_rows)
            n_conflict_rows = conflict_rows.count()
            classified, m = classify(chain_keyed.join(conflicts, k_seq, "left_anti"))

        def g(name: str) -> int:
            return (int(m[name] or 0) if m is not None else 0) + fm.get(name, 0)

        metrics = {
            "rows": n_rows,
            "events": g("events"),
            "duplicates": n_rows - n_bad - n_conflict_rows - g("events"),
            "conflicts": n_conflict_rows,
            "quarantined": n_bad + n_conflict_rows,
            "inserted": g("inserted"),
            "closed": g("closed"),
            "updated": g("updated"),
            "removed": g("removed"),
            "unchanged": g("unchanged"),
            "deleted": g("deleted"),
            "late": g("late"),
            "touched_keys": g("touched_keys"),
            "fast_path_keys": fm["touched_keys"],
        }
        n_writes = metrics["inserted"] + metrics["updated"] + metrics["removed"]
        parts = [
            *([_merge_source(classified, lay, spec)] if classified is not None else []),
            *([fast_source] if fast_source is not None else []),
        ]
        source = reduce(lambda a, b: a.unionByName(b), parts) if parts else stored.limit(0)
        attempted = not exists or bool(n_writes)
        with txn.session(spark) if txn is not None else nullcontext():
            if not exists:
                tgt.create(source.where(F.col(spec.is_current).isNotNull()))
            elif n_writes:
                with session_conf(spark, merge_conf):
                    _merge(tgt, source, lay, spec, bounds.predicate("t"))
        new_version = tgt.version()
        # With a transaction identity Delta skips a write the same batch already committed.
        committed = attempted and new_version != version
        metrics["committed"] = int(committed)
        metrics["already_committed"] = int(attempted and not committed)
        return SCD2Result(
            metrics=metrics,
            quarantine=bad,
            table_version=new_version,
            committed=committed,
            new_columns=lay.new_columns,
        )
    finally:
        # The quarantine frame stays lazy: it recomputes from ``changes`` when used.
        for df in cached:
            df.unpersist()


#: AQE's threshold for building a shuffled hash join's local map from a post-shuffle partition.
SHJ_THRESHOLD_KEY = "spark.sql.adaptive.maxShuffledHashJoinLocalMapThreshold"
ADVISORY_SIZE_KEY = "spark.sql.adaptive.advisoryPartitionSizeInBytes"


def default_merge_conf(spark: SparkSession) -> dict[str, str]:
    """The settings :func:`apply_scd2` runs its MERGE with unless told otherwise.

    The MERGE rewrites the touched files with a full outer join of the (small) set of rows
    to write and the (large) rows of those files. Spark plans it as a sort-merge join and
    sorts every row of the touched files; with ``spark.sql.adaptive.maxShuffledHashJoin
    LocalMapThreshold`` at least the advisory partition size, adaptive execution turns it
    into a shuffled hash join when every post-shuffle partition of one side fits under the
    threshold (measured at run time, so a large batch keeps the sort-merge join). The
    threshold is set to the advisory size, the smallest value at which Spark applies it.
    A session that already sets the threshold keeps its own value (empty result).

    Examples
    --------
    >>> default_merge_conf(spark)  # doctest: +SKIP
    {'spark.sql.adaptive.maxShuffledHashJoinLocalMapThreshold': '67108864b'}
    """
    # both keys have SQL defaults, so get() without a default returns the effective value
    if parse_byte_string(spark.conf.get(SHJ_THRESHOLD_KEY) or "0") > 0:
        return {}
    return {SHJ_THRESHOLD_KEY: spark.conf.get(ADVISORY_SIZE_KEY) or "64m"}


def _merge(tgt: _Target, source: DataFrame, lay: _Layout, spec: SCD2Spec, prune: Column) -> None:
    on = [*lay.keys, spec.valid_from]
    cond = _all([_c(c, "t") == _c(c, "s") for c in on]) & prune
    builder = (
        tgt.delta_table()
        .alias("t")
        .merge(source.alias("s"), cond)
        .whenMatchedDelete(condition=_c(spec.is_current, "s").isNull())
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll(condition=_c(spec.is_current, "s").isNotNull())
    )
    if lay.new_columns or lay.widened:
        # Delta widens a column type in a MERGE only with schema evolution on
        builder = builder.withSchemaEvolution()
    builder.execute()


# ---------------------------------------------------------------------------------------
# readers and checks


def read_as_of(spark: SparkSession, target: str, spec: SCD2Spec, as_of: Any) -> DataFrame:
    """The versions in effect at sequence value ``as_of`` (one row per live key).

    Examples
    --------
    >>> read_as_of(spark, path, spec, datetime(2024, 1, 2))  # doctest: +SKIP
    """
    df = _Target(spark, target).read()
    at = as_of if isinstance(as_of, Column) else F.lit(as_of)
    vf, vt = _c(spec.valid_from), _c(spec.valid_to)
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
    df = _Target(spark, target).read()
    keys = [_c(k) for k in spec.keys]
    vf, vt, ic = _c(spec.valid_from), _c(spec.valid_to), _c(spec.is_current)
    meta = {*spec.keys, *spec.meta_columns}
    tracked = (
        list(spec.track) if spec.track is not None else [c for c in df.columns if c not in meta]
    )
    w = Window.partitionBy(*keys).orderBy(vf)
    prev_vf = F.lag(vf).over(w)
    prev_vt = F.lag(vt).over(w)
    has_prev = F.lag(F.lit(1)).over(w).isNotNull()
    same_tracked = _all([_same(_c(t), F.lag(_c(t)).over(w)) for t in tracked])
    currents = F.sum(F.when(ic, 1).otherwise(0)).over(Window.partitionBy(*keys))
    checks = {
        "null_key_or_valid_from": _any([k.isNull() for k in keys]) | vf.isNull(),
        "duplicate_valid_from": has_prev & (prev_vf == vf),
        "current_flag_mismatch": ~_same(ic, vt.isNull()),
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
