"""Incremental processing on Spark's own machinery: streaming sources, checkpoints, foreachBatch.

Every job input that grows is read as a Structured Streaming source with a checkpoint per
job and source under the data root (``<data_root>/_checkpoints/<job>/<source>``):

- landing files: Spark's file source over the feed's glob (``binaryFile``, so only the
  file list is read here; the job parses the files itself). The checkpoint's offset log
  is the list of files of each increment, written *before* the increment runs;
- a Delta table: Delta's streaming source (new rows of an append-only table), or its
  Change Data Feed (``change_feed=True``: rows inserted, updated or deleted).

The job handles each increment (a micro-batch) in ``foreachBatch``. Its writes carry Delta's
idempotent identity: ``txnAppId`` = ``lakehouse/<job>/<table>/<source>/<query id>`` (stable
for the life of the checkpoint) and ``txnVersion`` = the micro-batch id. A crash between a
write and the checkpoint's commit re-runs the same increment (same files or versions, same
id) and Delta skips the writes that already committed. Nothing new means no micro-batch:
no write, no Delta version.

A batch run uses ``Trigger.AvailableNow`` (process what is there, then stop); a continuous
run a processing-time trigger. Both go through :meth:`StreamSpec.start`, the one code path.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from lakehouse.errors import LakehouseError
from lakehouse.spark.fs import glob_files, list_dirs, path_exists, read_text
from lakehouse.writes.idempotency import TxnIdentity, txn_identity
from lakehouse.writes.retry import RetryPolicy, retry_on_conflict

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from lakehouse.config import Settings

__all__ = [
    "AVAILABLE_NOW",
    "CHECKPOINTS",
    "Increment",
    "StreamFailedError",
    "StreamRun",
    "StreamSpec",
    "Trigger",
    "checkpoint_path",
    "checkpoints_root",
    "delta_stream_caught_up",
    "file_stream_checkpoints",
    "stop_gracefully",
]

log = logging.getLogger(__name__)
R = TypeVar("R")

#: Folder under the data root that holds every job's streaming checkpoints.
CHECKPOINTS = "_checkpoints"
_INTERVAL = re.compile(r"\s*(\d+)\s*(ms|s|sec|seconds?|m|min|minutes?|h|hours?)\s*")
_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours"}


class StreamFailedError(LakehouseError, RuntimeError):
    """A job's streaming query stopped with an error that its own code did not raise."""


@dataclass(frozen=True)
class Trigger:
    """When increments run: ``AvailableNow`` (the default; a batch run), or every
    ``processing_time`` (a continuous run).

    Examples
    --------
    >>> Trigger().continuous, Trigger.every("1m").processing_time
    (False, '1 minutes')
    """

    processing_time: str | None = None

    @classmethod
    def every(cls, interval: str) -> Trigger:
        """A processing-time trigger from ``30s``, ``1m``, ``2 minutes``, ``500ms``...

        Raises
        ------
        ValueError
            If ``interval`` is not a positive number with a unit.
        """
        match = _INTERVAL.fullmatch(interval)
        if not match or int(match.group(1)) <= 0:
            raise ValueError(
                f"invalid trigger interval {interval!r}: expected a positive number and a "
                "unit, such as 30s, 1m, 2h or 500ms"
            )
        unit = match.group(2)
        unit = "ms" if unit == "ms" else unit[0]
        return cls(f"{int(match.group(1))} {_UNITS[unit]}")

    @property
    def continuous(self) -> bool:
        return self.processing_time is not None


AVAILABLE_NOW = Trigger()


def checkpoints_root(settings: Settings) -> str:
    """``<data_root>/_checkpoints``: where every job keeps its streaming checkpoints."""
    root = settings.paths.data_root
    sep = "" if root.endswith("/") else "/"
    return f"{root}{sep}{CHECKPOINTS}" if "://" in root else settings._resolve(CHECKPOINTS)


def checkpoint_path(settings: Settings, job: str, source: str) -> str:
    """The checkpoint of ``job``'s stream over ``source``."""
    return f"{checkpoints_root(settings)}/{job}/{source}"


def file_stream_checkpoints(spark: SparkSession, settings: Settings, job: str) -> list[str]:
    """The checkpoints of ``job``'s streams over landing files: its streaming checkpoints
    (folders holding Spark's ``metadata`` file) not named after a table. A stream over a
    table keeps its checkpoint under the table's name, and a file stream may not take a
    table's name; other folders (a job's own bookkeeping) are no checkpoints."""
    found = list_dirs(spark, f"{checkpoints_root(settings)}/{job}")
    return [
        uri
        for name, uri in sorted(found.items())
        if name not in settings.tables and path_exists(spark, f"{uri}/metadata")
    ]


def delta_stream_caught_up(
    spark: SparkSession, checkpoint: str, table_version: int, table_id: str
) -> bool:
    """Whether the Delta stream with ``checkpoint`` has read every version of its table
    (id ``table_id``) up to ``table_version``, so a batch run of it would find nothing new.

    Read from the checkpoint's last offset, if that batch has a commit (Spark's offset log:
    a version line, the batch metadata, then the source's offset). Delta's offset
    ``{"reservoirId": id, "reservoirVersion": v, "index": -1}`` means "next to read:
    version ``v`` of table ``id`` from its start", so the same table still at a version
    below ``v`` has nothing new. Anything else (part of a version read, the initial
    snapshot still being read, another table id, an unreadable or uncommitted log, several
    sources) answers False: the query runs and decides.
    """
    numbered = [
        int(name)
        for name in (
            f.path.rstrip("/").rsplit("/", 1)[-1]
            for f in glob_files(spark, f"{checkpoint}/offsets/*")
        )
        if name.isdigit()
    ]
    if not numbered:
        return False
    last = max(numbered)
    if not path_exists(spark, f"{checkpoint}/commits/{last}"):
        return False
    lines = (read_text(spark, f"{checkpoint}/offsets/{last}") or "").splitlines()
    if len(lines) != 3:
        return False
    try:
        offset = json.loads(lines[2])
    except ValueError:
        return False
    if not isinstance(offset, dict) or offset.get("isStartingVersion") or offset.get("index") != -1:
        return False
    version = offset.get("reservoirVersion")
    same_table = offset.get("reservoirId") == table_id
    return same_table and isinstance(version, int) and table_version < version


@dataclass
class Increment:
    """One increment (micro-batch) of one source of one job, handed to the job's handler.

    ``df`` holds only what arrived since the previous increment. Writes made through
    :meth:`save` / :meth:`run` carry the increment's Delta identity, so a re-run of the
    same increment after a crash commits nothing twice. Use :attr:`spark` (the query's own
    session) for MERGEs and SQL: session settings of one query never leak into another.
    """

    job: str
    source: str
    id: int
    df: DataFrame
    batch_id: str
    query_id: str
    policy: RetryPolicy | None = None
    #: Rows the handler read and wrote (it sets them; they go to the run report).
    rows_read: int | None = None
    rows_written: int = 0
    #: Tables whose write of this increment had already committed (a replay).
    replayed: list[str] = field(default_factory=list)
    #: When the increment's oldest input arrived (Unix time), where the handler knows it:
    #: a landing file's modification time. The run report then holds the increment's lag,
    #: the time from that arrival to the end of its processing (``lag_s``).
    arrived_at: float | None = None

    @property
    def spark(self) -> SparkSession:
        return self.df.sparkSession

    @property
    def stream(self) -> str:
        return f"{self.source}/{self.query_id[:8]}"

    def identity(self, table: str) -> TxnIdentity:
        """The idempotent identity of this increment's write to ``table``."""
        base = txn_identity(self.job, self.batch_id, table=table, step=self.id)
        return TxnIdentity(base.job, base.batch_id, base.table, base.version, self.stream)

    def committed(self, table: str, path: str) -> bool:
        """Whether this increment's write to ``table`` (at ``path``) already committed."""
        from lakehouse.spark.delta import DeltaTableRef

        ref = DeltaTableRef.for_path(self.spark, path)
        if not ref.exists():
            return False
        app_id = self.identity(table).app_id
        rows = ref.delta_table().history(200).select("userMetadata").collect()
        for row in rows:
            try:
                meta = json.loads(row["userMetadata"] or "{}")
            except ValueError:
                continue
            if meta.get("app_id") == app_id and int(meta.get("txn_version", -1)) >= self.id:
                return True
        return False

    def save(self, table: str, writer: DataFrameWriter, path: str) -> None:
        """``writer.save(path)`` under this increment's identity, retried on conflicts."""
        txn = self.identity(table)
        retry_on_conflict(
            lambda: txn.apply(writer).save(path),
            policy=self.policy,
            describe=f"{self.job}: write to {table} (increment {self.id} of {self.source})",
        )

    def run(self, spark: SparkSession, table: str, operation: Callable[[], R]) -> R:
        """Run ``operation`` (a MERGE, UPDATE, DELETE or SQL write to ``table``) with this
        increment's identity set on ``spark`` (the query's session, :attr:`spark`),
        retried on conflicts. Same call as :meth:`BatchWrites.run
        <lakehouse.writes.idempotency.BatchWrites.run>`."""
        txn = self.identity(table)

        def attempt() -> R:
            with txn.session(spark):
                return operation()

        return retry_on_conflict(
            attempt,
            policy=self.policy,
            describe=f"{self.job}: write to {table} (increment {self.id} of {self.source})",
        )


@dataclass
class StreamRun:
    """One streaming query of a job: the increments it ran, and how it ended."""

    job: str
    source: str
    checkpoint: str
    query: StreamingQuery | None = None
    increments: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None
    skipped: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> dict[str, Any]:
        """What the run report shows for this source."""
        out: dict[str, Any] = {"source": self.source, "increments": list(self.increments)}
        if self.skipped:
            out["skipped"] = self.skipped
        out["rows_read"] = sum(i.get("rows_read") or 0 for i in self.increments)
        return out

    def wait(self) -> None:
        """Block until the query stops; re-raise the handler's own error if it failed."""
        if self.query is None:
            return
        from pyspark.errors import StreamingQueryException

        try:
            self.query.awaitTermination()
        except StreamingQueryException as exc:
            if self.error is not None:
                raise self.error from exc
            raise StreamFailedError(f"{self.job}: stream over {self.source} failed: {exc}") from exc
        self._add_offsets()

    def _add_offsets(self) -> None:
        """Source offsets (Delta versions, file-log entries) of each increment, from the
        query's progress."""
        if self.query is None:
            return
        by_batch: dict[int, dict[str, Any]] = {}
        for progress in self.query.recentProgress:
            data = json.loads(progress.json) if hasattr(progress, "json") else dict(progress)
            sources = data.get("sources") or [{}]
            by_batch[int(data.get("batchId", -1))] = {
                "start": _compact(sources[0].get("startOffset")),
                "end": _compact(sources[0].get("endOffset")),
            }
        for inc in self.increments:
            inc.update(by_batch.get(int(inc["increment"]), {}))


def _compact(offset: Any) -> Any:
    if isinstance(offset, str):
        try:
            offset = json.loads(offset)
        except ValueError:
            return offset
    if isinstance(offset, dict):
        keep = ("reservoirVersion", "index", "logOffset")
        return {k: offset[k] for k in keep if k in offset} or offset
    return offset


def _query_id(spark: SparkSession, checkpoint: str) -> str:
    """The streaming query's id, from its checkpoint's ``metadata`` file (Spark writes it
    when the query is created; it persists across restarts from the checkpoint)."""
    text = read_text(spark, f"{checkpoint}/metadata")
    if not text:
        raise StreamFailedError(f"{checkpoint}: checkpoint has no metadata file")
    return str(json.loads(text.splitlines()[0])["id"])


@dataclass
class StreamSpec:
    """How to start one job's stream: source, checkpoint, handler and trigger."""

    job: str
    source: str
    checkpoint: str
    batch_id: str
    handler: Callable[[Increment], None]
    trigger: Trigger = AVAILABLE_NOW
    policy: RetryPolicy | None = None

    def _call(self, run: StreamRun) -> Callable[[DataFrame, int], None]:
        query_ids: list[str] = []

        def call(df: DataFrame, batch: int) -> None:
            if df.isEmpty():
                # e.g. an OPTIMIZE upstream (dataChange=false): nothing to write, and an
                # empty write would still commit a Delta version
                return
            if not query_ids:
                query_ids.append(_query_id(df.sparkSession, self.checkpoint))
            inc = Increment(
                job=self.job,
                source=self.source,
                id=int(batch),
                df=df,
                batch_id=self.batch_id,
                query_id=query_ids[0],
                policy=self.policy,
            )
            started = time.perf_counter()
            try:
                self.handler(inc)
            except BaseException as exc:
                run.error = exc
                raise
            entry: dict[str, Any] = {
                "increment": int(batch),
                "rows_read": inc.rows_read,
                "rows_written": inc.rows_written,
                "seconds": round(time.perf_counter() - started, 3),
            }
            if inc.replayed:
                entry["replayed"] = list(inc.replayed)
            if inc.arrived_at is not None:
                entry["lag_s"] = round(time.time() - inc.arrived_at, 3)
            with run._lock:
                run.increments.append(entry)
            log.info(
                "%s: increment %d of %s: %s rows read, %d written",
                self.job,
                batch,
                self.source,
                inc.rows_read,
                inc.rows_written,
            )

        return call

    def start(self, stream: DataFrame) -> StreamRun:
        """Start the query over ``stream`` (a streaming DataFrame); in a batch run
        (AvailableNow) wait for it to finish."""
        run = StreamRun(job=self.job, source=self.source, checkpoint=self.checkpoint)
        writer = (
            stream.writeStream.queryName(f"{self.job}.{self.source}")
            .option("checkpointLocation", self.checkpoint)
            .foreachBatch(self._call(run))
        )
        if self.trigger.processing_time is not None:
            writer = writer.trigger(processingTime=self.trigger.processing_time)
        else:
            writer = writer.trigger(availableNow=True)
        run.query = writer.start()
        if not self.trigger.continuous:
            run.wait()
        return run


def stop_gracefully(runs: list[StreamRun], *, timeout_s: float = 120.0) -> None:
    """Stop running queries at an increment boundary: wait (up to ``timeout_s``) until
    each is between micro-batches, then stop it. A query still busy at the deadline is
    stopped anyway; its increment re-runs on the next start and Delta skips what it had
    already committed."""
    deadline = time.monotonic() + timeout_s
    for run in runs:
        query = run.query
        if query is None or not query.isActive:
            continue
        while time.monotonic() < deadline and query.isActive and query.status["isTriggerActive"]:
            time.sleep(0.2)
        query.stop()
        log.info("%s: stream over %s stopped", run.job, run.source)
