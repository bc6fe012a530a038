"""Idempotent, restartable writes: Delta transaction identities and commit tags.

Every write a job makes carries Delta's idempotent-write identity (a ``SetTransaction``
action in the log): ``txnAppId`` names the job, the target table and the batch, and
``txnVersion`` is the write's step number within that batch (0, 1, 2... monotonically
increasing per run). Delta skips a write whose ``txnVersion`` is not greater than the
last one committed for that ``txnAppId``, so re-running a batch after a crash never
duplicates data, and a batch re-run out of order is never mistaken for an older one
(each batch has its own app id).

* DataFrame writes: :meth:`TxnIdentity.apply` adds the ``txnAppId`` / ``txnVersion`` /
  ``userMetadata`` writer options.
* MERGE / UPDATE / DELETE / SQL: :meth:`TxnIdentity.session` sets Delta's session confs
  ``spark.databricks.delta.write.txnAppId`` / ``txnVersion`` and
  ``spark.databricks.delta.commitInfo.userMetadata`` for the block and restores them after
  (Delta does not unset them itself: a forgotten conf silently skips the next write).
  Session confs are per session: concurrent writers in threads should each use
  ``spark.newSession()``.

Each commit's ``userMetadata`` is JSON ``{"job", "batch_id", "table", "app_id",
"txn_version"}``, which :mod:`lakehouse.writes.rollback` uses to find the commits of a run.

Examples
--------
>>> t = txn_identity("silver_orders", "20260101T000000Z", table="orders")
>>> t.app_id, t.version
('lakehouse/silver_orders/orders/20260101T000000Z', 0)
>>> sorted(t.writer_options())
['txnAppId', 'txnVersion', 'userMetadata']
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from lakehouse.spark.session import session_conf
from lakehouse.spark.sql import validate_identifier
from lakehouse.writes.retry import RetryPolicy, retry_on_conflict

if TYPE_CHECKING:
    from pyspark.sql import DataFrameWriter, SparkSession

R = TypeVar("R")

__all__ = [
    "SESSION_TXN_APP_ID",
    "SESSION_TXN_VERSION",
    "SESSION_USER_METADATA",
    "BatchWrites",
    "TxnIdentity",
    "Writes",
    "batch_commits",
    "commit_metadata",
    "txn_identity",
]

SESSION_TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
SESSION_TXN_VERSION = "spark.databricks.delta.write.txnVersion"
SESSION_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"

_BATCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}")


@dataclass(frozen=True)
class TxnIdentity:
    """Delta's idempotent-write identity of one write of one job in one batch."""

    job: str
    batch_id: str
    table: str
    version: int
    #: A streaming query's identity (``<source>/<query id>``): the app id is then stable
    #: across runs and ``version`` is the query's micro-batch id (the increment), Delta's
    #: documented ``foreachBatch`` pattern. None: one identity per batch, ``version`` = step.
    stream: str | None = None

    @property
    def app_id(self) -> str:
        if self.stream is not None:
            return f"lakehouse/{self.job}/{self.table}/{self.stream}"
        return f"lakehouse/{self.job}/{self.table}/{self.batch_id}"

    @property
    def user_metadata(self) -> str:
        meta: dict[str, Any] = {
            "job": self.job,
            "batch_id": self.batch_id,
            "table": self.table,
            "app_id": self.app_id,
            "txn_version": self.version,
        }
        if self.stream is not None:
            meta["increment"] = self.version
        return json.dumps(meta, sort_keys=True)

    def next(self) -> TxnIdentity:
        """The identity of the next write to the same table in the same batch."""
        return TxnIdentity(self.job, self.batch_id, self.table, self.version + 1, self.stream)

    def writer_options(self) -> dict[str, str]:
        """Options for ``DataFrameWriter``: ``txnAppId``, ``txnVersion``, ``userMetadata``."""
        return {
            "txnAppId": self.app_id,
            "txnVersion": str(self.version),
            "userMetadata": self.user_metadata,
        }

    def apply(self, writer: DataFrameWriter) -> DataFrameWriter:
        """Return ``writer`` with the identity set (DataFrame appends and overwrites)."""
        for key, value in self.writer_options().items():
            writer = writer.option(key, value)
        return writer

    @contextmanager
    def session(self, spark: SparkSession) -> Iterator[TxnIdentity]:
        """Set the identity as session confs for MERGE/UPDATE/DELETE/SQL inside the block.

        The previous values are restored on exit, even on error.
        """
        keys = {
            SESSION_TXN_APP_ID: self.app_id,
            SESSION_TXN_VERSION: str(self.version),
            SESSION_USER_METADATA: self.user_metadata,
        }
        with session_conf(spark, keys):
            yield self


@contextmanager
def commit_metadata(spark: SparkSession, *, job: str, batch_id: str) -> Iterator[None]:
    """Tag every Delta commit made inside the block with ``{"job", "batch_id"}``.

    Sets ``spark.databricks.delta.commitInfo.userMetadata`` for the block (restored on
    exit), so :mod:`lakehouse.writes.rollback` finds a run's commits on every table the job
    wrote, including MERGEs that carry no transaction identity. A write's own
    ``userMetadata`` (see :meth:`TxnIdentity.apply` / :meth:`TxnIdentity.session`) wins.
    """
    meta = json.dumps({"job": job, "batch_id": batch_id}, sort_keys=True)
    previous = spark.conf.get(SESSION_USER_METADATA, None)
    spark.conf.set(SESSION_USER_METADATA, meta)
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(SESSION_USER_METADATA)
        else:
            spark.conf.set(SESSION_USER_METADATA, previous)


def txn_identity(job: str, batch_id: str, *, table: str, step: int = 0) -> TxnIdentity:
    """The idempotent-write identity of write number ``step`` of ``job`` to ``table``.

    Raises
    ------
    ValueError
        If ``job`` or ``table`` is not an identifier, ``batch_id`` has characters outside
        ``[A-Za-z0-9_.:+-]`` (or is longer than 128), or ``step`` is negative.
    """
    validate_identifier(job)
    validate_identifier(table)
    if not isinstance(batch_id, str) or not _BATCH.fullmatch(batch_id):
        raise ValueError(
            f"invalid batch id {batch_id!r}: must match [A-Za-z0-9][A-Za-z0-9_.:+-]* "
            "(at most 128 characters)"
        )
    if step < 0:
        raise ValueError(f"step must be >= 0; found {step}")
    return TxnIdentity(job, batch_id, table, step)


class Writes(Protocol):
    """What writers accept to run a write under an idempotent identity: a run's
    :class:`BatchWrites`, or one increment of a stream
    (:class:`~lakehouse.pipeline.incremental.Increment`)."""

    def run(self, spark: SparkSession, table: str, operation: Callable[[], R]) -> R:
        """Run ``operation`` (a write to ``table``) under the next identity of ``table``."""
        ...


@dataclass
class BatchWrites:
    """The writes one job makes in one batch: each gets the next transaction identity of
    its table, and runs with bounded retry on Delta commit conflicts.

    Examples
    --------
    >>> w = BatchWrites("gold_daily_sales", "20260101T000000Z")
    >>> w.identity("fact_sales").version, w.identity("fact_sales").version
    (0, 1)
    """

    job: str
    batch_id: str
    policy: RetryPolicy | None = None
    _steps: dict[str, int] = field(default_factory=dict, repr=False)

    def identity(self, table: str) -> TxnIdentity:
        """The identity of the next write to ``table`` (steps 0, 1, 2... per table)."""
        step = self._steps[table] = self._steps.get(table, -1) + 1
        return txn_identity(self.job, self.batch_id, table=table, step=step)

    def run(self, spark: SparkSession, table: str, operation: Callable[[], R]) -> R:
        """Run ``operation`` (a MERGE / UPDATE / DELETE or a DataFrame write to ``table``)
        under the table's next identity as session confs, retrying commit conflicts.

        ``operation`` must do the whole read-modify-write each time it is called. A re-run
        of the same batch whose write already committed is skipped by Delta (no new
        version); callers detect that by comparing table versions.
        """
        txn = self.identity(table)

        def attempt() -> R:
            with txn.session(spark):
                return operation()

        return retry_on_conflict(
            attempt, policy=self.policy, describe=f"{self.job}: write to {table}"
        )

    def save(self, table: str, writer: DataFrameWriter, path: str) -> None:
        """``writer.save(path)`` with the table's next identity as writer options, retrying
        commit conflicts (a re-run of a committed batch write is skipped by Delta)."""
        txn = self.identity(table)
        retry_on_conflict(
            lambda: txn.apply(writer).save(path),
            policy=self.policy,
            describe=f"{self.job}: write to {table}",
        )


def batch_commits(spark: SparkSession, path: str, batch_id: str) -> list[dict[str, Any]]:
    """Commits of the Delta table at ``path`` whose ``userMetadata`` names ``batch_id``.

    Each item: ``version``, ``operation``, ``timestamp`` and the parsed metadata; oldest
    first.
    """
    from delta.tables import DeltaTable

    rows = (
        DeltaTable.forPath(spark, path)
        .history()
        .select("version", "operation", "timestamp", "userMetadata")
        .collect()
    )
    out = []
    for row in rows:
        meta = _parse_meta(row["userMetadata"])
        if meta is not None and meta.get("batch_id") == batch_id:
            out.append(
                {
                    "version": int(row["version"]),
                    "operation": row["operation"],
                    "timestamp": row["timestamp"],
                    **meta,
                }
            )
    return sorted(out, key=lambda c: c["version"])


def _parse_meta(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        meta = json.loads(text)
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None
