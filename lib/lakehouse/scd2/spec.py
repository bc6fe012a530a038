"""What an SCD2 table is keyed, ordered and versioned by (:class:`SCD2Spec`), what a call
returns (:class:`SCD2Result`) and the errors the SCD2 package raises.

Every error derives from :class:`SCD2Error` (a :class:`~lakehouse.errors.LakehouseError`)
and from the built-in that fits it.

Examples
--------
>>> spec = SCD2Spec(keys=["customer_id"], sequence_by="updated_at", delete_when="op = 'D'")
>>> spec.keys
('customer_id',)
>>> SCD2Spec(keys=[], sequence_by="ts")
Traceback (most recent call last):
...
lakehouse.scd2.spec.SCD2SpecError: SCD2Spec.keys: at least one key column is required, found []
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.errors import LakehouseError
from lakehouse.spark.sql import validate_identifier

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "DEFAULT_TOMBSTONE_RETENTION",
    "ConflictPolicy",
    "SCD2ConflictError",
    "SCD2Error",
    "SCD2InvariantError",
    "SCD2Result",
    "SCD2SchemaError",
    "SCD2Spec",
    "SCD2SpecError",
]

#: What :func:`~lakehouse.scd2.apply.apply_scd2` does with different events at one
#: (key, sequence): ``"fail"`` before writing, or ``"quarantine"`` them.
ConflictPolicy = Literal["fail", "quarantine"]


class SCD2Error(LakehouseError):
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


def normalize_spec(spec: Any, optional: Sequence[str]) -> tuple[str, ...]:
    """Shared checks of the CDC specs' ``__post_init__``: ``tombstone_retention`` is valid,
    ``keys`` and the ``optional`` column lists become tuples (a single name is accepted),
    and there is at least one key. Returns the keys."""
    owner = type(spec).__name__
    check_retention(owner, spec.tombstone_retention)
    for name in ("keys", *optional):
        value = getattr(spec, name)
        if value is not None:
            object.__setattr__(spec, name, (value,) if isinstance(value, str) else tuple(value))
    keys: tuple[str, ...] = spec.keys
    if not keys:
        raise SCD2SpecError(f"{owner}.keys: at least one key column is required, found []")
    return keys


#: How long the event log keeps an event unless a spec says otherwise.
DEFAULT_TOMBSTONE_RETENTION = timedelta(days=2)


def check_retention(owner: str, retention: timedelta | None) -> None:
    """A spec's ``tombstone_retention`` is a non-negative timedelta or None."""
    if retention is not None and (not isinstance(retention, timedelta) or retention < timedelta(0)):
        raise SCD2SpecError(
            f"{owner}.tombstone_retention: a timedelta >= 0 or None, found {retention!r}"
        )


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
    ignore_null_updates
        Partial updates (AUTO CDC: ``ignore_null_updates``): a NULL attribute in an upsert
        keeps the value in effect at its sequence, so the version it opens carries the
        earlier values forward (after a delete, nothing is carried). A late partial update
        splices in with the values in effect at its sequence, and the versions after it
        that carried values are recomputed. Every upsert is then kept in the event log.
    tombstone_retention
        How long the table's event log (:mod:`lakehouse.scd2.log`: deletes and the other
        events the versions cannot show) keeps an event; ``None`` keeps them forever.
        Within it, batches give the same table in any order; an event older than an
        expired log entry may be applied as if that entry had never happened. Default:
        2 days (AUTO CDC: ``pipelines.cdc.tombstoneGCThresholdInSeconds``).

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
    ignore_null_updates: bool = False
    tombstone_retention: timedelta | None = DEFAULT_TOMBSTONE_RETENTION

    def __post_init__(self) -> None:
        keys = normalize_spec(self, ("track", "except_columns"))
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
    """Outcome of :func:`~lakehouse.scd2.apply.apply_scd2`.

    ``metrics`` keys: ``rows`` (change rows read), ``events`` (valid change rows), ``duplicates`` (exact duplicates
    dropped), ``conflicts`` (quarantined by the ``quarantine`` policy), ``quarantined``,
    ``tombstoned`` (deletes of this batch the event log now remembers),
    ``ignored_null_updates`` (with ``ignore_null_updates``: upserts with a NULL attribute,
    which kept the value in effect),
    ``inserted`` (version rows added), ``closed`` (versions whose ``valid_to`` this call
    set), ``updated`` (stored rows rewritten), ``removed`` (stored rows coalesced away),
    ``unchanged`` (events that changed no tracked column), ``deleted`` (deletes that
    closed a version), ``late`` (new events older than the key's latest stored sequence),
    ``touched_keys``, ``fast_path_keys`` (of those, the keys decided without windows),
    ``retries`` (Delta commit conflicts retried), ``committed`` (1 if a Delta commit was
    made) and ``already_committed`` (1 if the transaction identity's commit had landed).
    """

    metrics: Mapping[str, int]
    quarantine: DataFrame
    table_version: int | None
    committed: bool = False
    new_columns: tuple[str, ...] = field(default=())
