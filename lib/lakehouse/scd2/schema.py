"""Schema resolution: which change-feed columns are keys, attributes (tracked or not) and
delete-only, and how the feed's types fit the target's (:func:`resolve_layout`).

Examples
--------
>>> from pyspark.sql import types as T
>>> upcasts_to(T.IntegerType(), T.LongType()), upcasts_to(T.LongType(), T.IntegerType())
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.errors import AnalysisException
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.scd2.columns import INTERNAL
from lakehouse.scd2.spec import SCD2SchemaError, SCD2Spec, SCD2SpecError
from lakehouse.spark.sql import validate_identifier

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["Layout", "delete_only_columns", "merge_widens_types", "resolve_layout", "upcasts_to"]

_INTEGRAL_RANK = {"tinyint": 1, "smallint": 2, "int": 3, "bigint": 4}
_INTEGRAL_DIGITS = {"tinyint": 3, "smallint": 5, "int": 10, "bigint": 20}


def upcasts_to(src: T.DataType, dst: T.DataType) -> bool:
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
        return dst.precision - dst.scale >= _INTEGRAL_DIGITS[s]
    return False


def merge_widens_types(df: DataFrame) -> bool:
    """Whether this Delta widens a column type in a MERGE with schema evolution: Delta 4.x,
    which pairs with Spark 4 (Delta 3.x, on Spark 3.5, fails the write with a cast
    overflow instead)."""
    return int(df.sparkSession.version.split(".")[0]) >= 4


@dataclass(frozen=True)
class Layout:
    """The resolved columns of one call."""

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


def delete_only_columns(changes: DataFrame, spec: SCD2Spec) -> tuple[str, ...]:
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


def resolve_layout(
    changes: DataFrame,
    spec: SCD2Spec,
    target_schema: T.StructType | None,
    props: Callable[[], dict[str, str]],
) -> Layout:
    """Check the change feed against the spec (and the target's schema, if there is a
    target) and say which columns play which part.

    ``props`` returns the target's table properties; it is called only when a feed column
    is wider than its target column (to see whether the table allows type widening).

    Raises
    ------
    SCD2SpecError
        A column the spec or the target needs is missing, or a name clashes.
    SCD2SchemaError
        A feed column's type cannot be stored in its target column.
    """
    _check_feed_columns(changes, spec)
    _check_delete_when(changes, spec)
    excluded = _excluded_columns(changes, spec)
    cols = changes.columns
    feed_attrs = [c for c in cols if c not in (*spec.keys, spec.sequence_by, *excluded)]
    if spec.track is not None:
        unknown = [c for c in spec.track if c not in feed_attrs]
        if unknown:
            raise SCD2SpecError(
                f"SCD2Spec.track {unknown} are not attribute columns of the change feed "
                f"(attributes: {feed_attrs})"
            )
    attrs = list(feed_attrs)
    new_columns: tuple[str, ...] = ()
    casts: dict[str, T.DataType] = {}
    widened: tuple[str, ...] = ()
    if target_schema is not None:
        target_attrs = _target_attributes(target_schema, spec, feed_attrs)
        new_columns = tuple(c for c in feed_attrs if c not in target_schema.fieldNames())
        attrs = [*target_attrs, *new_columns]
        pairs = [(c, c) for c in (*spec.keys, *target_attrs)]
        pairs.append((spec.sequence_by, spec.valid_from))
        casts, widened = _casts(changes, spec, target_schema, pairs, props)
    tracked = tuple(spec.track) if spec.track is not None else tuple(attrs)
    return Layout(
        keys=tuple(spec.keys),
        seq=spec.sequence_by,
        attrs=tuple(attrs),
        tracked=tracked,
        untracked=tuple(c for c in attrs if c not in tracked),
        excluded=excluded,
        new_columns=new_columns,
        casts=casts,
        widened=widened,
    )


def _check_feed_columns(changes: DataFrame, spec: SCD2Spec) -> None:
    """Keys and sequence present, no meta or internal column, every name valid."""
    cols = changes.columns
    missing = [c for c in (*spec.keys, spec.sequence_by) if c not in cols]
    if missing:
        raise SCD2SpecError(f"change feed lacks key/sequence column(s) {missing}; it has {cols}")
    clash = [c for c in cols if c in spec.meta_columns or c in INTERNAL]
    if clash:
        raise SCD2SpecError(
            f"change feed must not contain meta column(s) {clash}; "
            f"they are written by the engine (meta columns: {list(spec.meta_columns)})"
        )
    for c in cols:
        validate_identifier(c)


def _check_delete_when(changes: DataFrame, spec: SCD2Spec) -> None:
    """``delete_when`` resolves against the feed and is boolean."""
    if spec.delete_when is None:
        return
    try:
        dtype = changes.select(F.expr(spec.delete_when).alias("d")).schema["d"].dataType
    except AnalysisException as exc:
        raise SCD2SpecError(
            f"SCD2Spec.delete_when {spec.delete_when!r} does not resolve against the "
            f"change feed columns {changes.columns}"
        ) from exc
    if not isinstance(dtype, T.BooleanType):
        raise SCD2SpecError(
            f"SCD2Spec.delete_when must be boolean, found {dtype.simpleString()} "
            f"for {spec.delete_when!r}"
        )


def _excluded_columns(changes: DataFrame, spec: SCD2Spec) -> tuple[str, ...]:
    """Feed columns never stored: ``except_columns``, or by default the delete-only ones."""
    if spec.except_columns is None:
        return delete_only_columns(changes, spec)
    unknown = [c for c in spec.except_columns if c not in changes.columns]
    if unknown:
        raise SCD2SpecError(
            f"SCD2Spec.except_columns {unknown} are not in the change feed {changes.columns}"
        )
    return tuple(spec.except_columns)


def _target_attributes(
    target_schema: T.StructType, spec: SCD2Spec, feed_attrs: Sequence[str]
) -> list[str]:
    """The target's attribute columns, after checking it has the SCD2 columns and the feed
    has every attribute."""
    tcols = target_schema.fieldNames()
    lacking = [c for c in (*spec.keys, *spec.meta_columns) if c not in tcols]
    if lacking:
        raise SCD2SpecError(f"target lacks SCD2 column(s) {lacking}; it has {tcols}")
    target_attrs = [c for c in tcols if c not in (*spec.keys, *spec.meta_columns)]
    absent = [c for c in target_attrs if c not in feed_attrs]
    if absent:
        raise SCD2SpecError(
            f"change feed lacks target attribute column(s) {absent}; "
            f"feed attributes: {list(feed_attrs)}"
        )
    return target_attrs


def _casts(
    changes: DataFrame,
    spec: SCD2Spec,
    target_schema: T.StructType,
    pairs: Sequence[tuple[str, str]],
    props: Callable[[], dict[str, str]],
) -> tuple[dict[str, T.DataType], tuple[str, ...]]:
    """For each (feed column, target column) pair of different types: the lossless casts
    of the feed, and the target columns Delta's type widening widens in the MERGE."""
    feed_types = {f.name: f.dataType for f in changes.schema.fields}
    tcols = {f.name: f.dataType for f in target_schema.fields}
    casts: dict[str, T.DataType] = {}
    widened: list[str] = []
    for feed_col, tcol in pairs:
        src, dst = feed_types[feed_col], tcols[tcol]
        if src == dst:
            continue
        if upcasts_to(src, dst):
            casts[feed_col] = dst
        elif _widens(changes, spec, feed_col, tcol, src, dst, props):
            widened.append(tcol)  # Delta's type widening changes the type in the MERGE
        else:
            raise SCD2SchemaError(
                f"column {feed_col!r}: change feed type {src.simpleString()} cannot be "
                f"stored in target column {tcol!r} of type {dst.simpleString()} "
                "(not a widening the table allows); cast the change feed or widen the "
                "target column (Delta type widening: delta.enableTypeWidening)"
            )
    return casts, tuple(widened)


def _widens(
    changes: DataFrame,
    spec: SCD2Spec,
    feed_col: str,
    tcol: str,
    src: T.DataType,
    dst: T.DataType,
    props: Callable[[], dict[str, str]],
) -> bool:
    """Whether the MERGE may widen target column ``tcol`` to the feed's wider type."""
    if not (
        upcasts_to(dst, src)
        and feed_col != spec.sequence_by
        and props().get("delta.enableTypeWidening", "false").lower() == "true"
    ):
        return False
    if not merge_widens_types(changes):
        raise SCD2SchemaError(
            f"column {feed_col!r}: change feed type {src.simpleString()} is wider "
            f"than target column {tcol!r} of type {dst.simpleString()}; the "
            "table allows type widening, but Delta before 4.0 does not widen a "
            "column in a MERGE: widen it first (ALTER TABLE ... ALTER COLUMN ... "
            "TYPE) or cast the change feed"
        )
    return True
