"""Change data capture into Delta: SCD type 1 and type 2 tables from change feeds or from
full snapshots, with Databricks AUTO CDC semantics on any Spark + Delta.

* :func:`apply_scd2` / :class:`SCD2Spec`: a history of versions per key
  (:mod:`lakehouse.scd2`).
* :func:`apply_scd1` / :class:`SCD1Spec`: one live row per key, the latest event wins.
* :func:`apply_snapshot`: a full snapshot diffed against the rows in effect and applied
  as change events to either.

Every one remembers deletes (and the other events a table cannot show) in the table's
event log (:mod:`lakehouse.scd2.log`), so batches give the same table in any order.
"""

from lakehouse.cdc.scd1 import SCD1Spec, apply_scd1
from lakehouse.cdc.snapshot import SnapshotOrderError, apply_snapshot
from lakehouse.scd2 import SCD2Result, SCD2Spec, apply_scd2

__all__ = [
    "SCD1Spec",
    "SCD2Result",
    "SCD2Spec",
    "SnapshotOrderError",
    "apply_scd1",
    "apply_scd2",
    "apply_snapshot",
]
