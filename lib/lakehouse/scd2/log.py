"""The table's event log: the events its rows cannot show, so that the order in which
batches arrive never changes the table.

A table of versions (SCD2) or live rows (SCD1) forgets some events: a delete when nothing
was in effect, an upsert that changed no tracked column, a version coalesced away when a
late event arrived before it. Each of those can matter again when a later batch brings an
event older than it (a customer deleted in batch 1 must not be resurrected by an older
upsert in batch 2). The engine therefore remembers them in a Delta table beside the
target, the *event log*, and rebuilds a touched key from its stored rows plus its logged
events plus the batch:

* every delete (a *tombstone*), and every truncate (SCD1);
* every upsert that opens no version when applied, and every stored version or derived
  delete a batch makes disappear;
* with untracked columns, every upsert (a version's untracked values are those of the
  latest event in it, so each event's own values are kept).

The log lives in ``<path>/_cdc_log`` for a table at ``<path>`` (a directory whose name
starts with ``_``, which Delta neither reads as table data nor removes in ``VACUUM``), or
in the table ``<name>__cdc_log`` for a catalog table. A plain read of the target never
shows it. Rows older than the spec's ``tombstone_retention`` (by the time they were
logged) are removed when a call appends to the log; a batch older than an expired log row may then be
applied as if that event had never happened, which is the trade-off of Databricks'
``pipelines.cdc.tombstoneGCThresholdInSeconds``.

Examples
--------
>>> log_location("/data/customers/"), log_location("db.customers")
('/data/customers/_cdc_log', 'db.customers__cdc_log')
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.scd2.batch import BROADCAST_KEYS, Touched
from lakehouse.scd2.columns import DEL, SEQ, qcol
from lakehouse.scd2.schema import Layout
from lakehouse.spark.delta import DeltaTableRef, event_log_location
from lakehouse.spark.fs import path_exists

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "LOGGED_AT",
    "append_events",
    "expire_events",
    "log_exists",
    "log_location",
    "log_ref",
    "logged_events",
]

#: When an event was logged (what ``tombstone_retention`` is measured against).
LOGGED_AT = "__scd2_logged_at__"


def log_location(target: str) -> str:
    """Where the event log of ``target`` (a path or a catalog name) lives."""
    return event_log_location(target)


def log_ref(table: DeltaTableRef) -> DeltaTableRef:
    """The event log of ``table``."""
    return DeltaTableRef(table.spark, log_location(table.location), is_path=table.is_path)


def log_exists(log: DeltaTableRef) -> bool:
    """Whether the log has been created. (Delta's own check would find the target's log
    above ``_cdc_log`` and answer yes.)"""
    if log.is_path:
        return path_exists(log.spark, f"{log.location}/_delta_log")
    return log.exists()


def logged_events(
    log: DeltaTableRef, keyed: DataFrame, touched: Touched, lay: Layout
) -> DataFrame | None:
    """The logged events of the touched keys in the shape of ``keyed`` (keys, sequence,
    delete flag, attributes; attributes the log lacks are NULL), or None without a log."""
    if not touched.count or not log_exists(log):
        return None
    logged = log.read()
    have = set(logged.columns)
    touched_keys = keyed.select(*[qcol(k) for k in lay.keys])
    if touched.count <= BROADCAST_KEYS:
        touched_keys = F.broadcast(touched_keys)
    found = logged.where(touched.predicate(None)).join(touched_keys, list(lay.keys), "left_semi")
    types = {f.name: f.dataType for f in keyed.schema.fields}
    return found.select(
        *[qcol(k) for k in lay.keys],
        F.col(SEQ).cast(types[SEQ]).alias(SEQ),
        F.col(DEL),
        *[(qcol(a) if a in have else F.lit(None)).cast(types[a]).alias(a) for a in lay.attrs],
    )


def append_events(log: DeltaTableRef, events: DataFrame) -> None:
    """Append ``events`` (the shape of :func:`logged_events`) to the log, stamped with the
    time; the log is created on first use and gains columns the target gains."""
    stamped = events.withColumn(LOGGED_AT, F.current_timestamp())
    if not log_exists(log):
        log.create(stamped)
        return
    writer = stamped.write.format("delta").mode("append").option("mergeSchema", "true")
    if log.is_path:
        writer.save(log.location)
    else:
        writer.saveAsTable(log.location)


def expire_events(log: DeltaTableRef, retention: timedelta | None) -> int:
    """Delete the log's events logged more than ``retention`` ago (none if None); how many.
    Nothing is committed when none has expired."""
    if retention is None or not log_exists(log):
        return 0
    cutoff = datetime.now(UTC) - retention
    expired = F.col(LOGGED_AT) < F.lit(cutoff).cast(T.TimestampType())
    if not log.read().where(expired).limit(1).count():
        return 0
    log.delta_table().delete(expired)
    return int(log.last_operation_metrics().get("numDeletedRows", 0))
