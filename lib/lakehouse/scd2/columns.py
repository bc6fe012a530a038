"""The engine's internal column names and the small Column helpers every step uses.

Internal names have leading and trailing double underscores to keep them out of the way of
user columns (a change feed that uses them is rejected by :mod:`lakehouse.scd2.schema`).

Examples
--------
>>> INTERNAL
('__scd2_seq__', '__scd2_del__', '__scd2_src__', '__scd2_act__')
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakehouse.spark.sql import quote_identifier

__all__ = [
    "ACT",
    "DEL",
    "INTERNAL",
    "SEQ",
    "SRC",
    "SRC_LOG",
    "SRC_NEW",
    "SRC_STORED_DELETE",
    "SRC_STORED_VERSION",
    "all_of",
    "any_of",
    "qcol",
    "same",
]

#: An event's sequence value (``valid_from`` of a stored version).
SEQ = "__scd2_seq__"
#: Whether the event is a delete.
DEL = "__scd2_del__"
#: Where the event comes from (one of the ``SRC_*`` values).
SRC = "__scd2_src__"
#: What the MERGE must do with the row: ``insert``, ``update``, ``delete`` or NULL.
ACT = "__scd2_act__"
INTERNAL = (SEQ, DEL, SRC, ACT)

# Event origins, also the tie-break order of events with the same (key, sequence): a
# stored version, a delete derived from a closed version's end, an event of the table's
# event log (:mod:`lakehouse.scd2.log`), a new event of the batch.
SRC_STORED_VERSION = 0
SRC_STORED_DELETE = 1
SRC_LOG = 2
SRC_NEW = 3


def qcol(name: str, alias: str | None = None) -> Column:
    """The column ``name`` (quoted), of the relation ``alias`` if given."""
    q = quote_identifier(name)
    return F.col(f"{alias}.{q}" if alias else q)


def all_of(cols: Sequence[Column]) -> Column:
    """``cols[0] AND cols[1] ...``; true when empty."""
    return reduce(lambda a, b: a & b, cols) if cols else F.lit(True)


def any_of(cols: Sequence[Column]) -> Column:
    """``cols[0] OR cols[1] ...``; false when empty."""
    return reduce(lambda a, b: a | b, cols) if cols else F.lit(False)


def same(a: Column, b: Column) -> Column:
    """NULL-safe equality."""
    return a.eqNullSafe(b)
