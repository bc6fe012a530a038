"""The job context: what every job's ``run(ctx)`` is handed, already set up.

A job module is a pure ``transform`` plus a thin ``run(ctx)``. The context carries what
every job needs, so no job rebuilds it by hand (and none can skip part of it):

- the job's typed settings (``ctx.config``: its module's ``Config``) and the whole
  configuration (``ctx.settings``);
- the job's AQE profile, applied to the session before ``run`` is called and put back after;
- every Delta commit of the job tagged with its batch id (``lakehouse rollback`` finds them);
- idempotent writes (``ctx.writes``: Delta's ``txnAppId``/``txnVersion`` per table, retried on
  commit conflicts);
- the result (``ctx.result``), timed, with the Delta version of every output;
- reads and writes held to the job's declaration: ``ctx.read``/``ctx.input_path`` accept only
  declared ``inputs``, ``ctx.output_path`` only declared ``outputs``;
- incremental reads (``ctx.stream_table``, ``ctx.stream_files``): only what arrived since the
  job's last successful run, one :class:`~lakehouse.pipeline.incremental.Increment` at a
  time, with a checkpoint per job and source (see :mod:`lakehouse.pipeline.incremental`).

Examples
--------
A job module::

    from lakehouse.config import JobSettings
    from lakehouse.pipeline import JobContext

    class Config(JobSettings):
        min_amount: float = 0.0

    def transform(orders, *, min_amount):
        return orders.where(orders.amount >= min_amount)

    def run(ctx: JobContext[Config]) -> None:
        orders = ctx.read("orders")
        out = transform(orders, min_amount=ctx.config.min_amount)
        ctx.writes.save("big_orders", out.write.format("delta").mode("overwrite"),
                        ctx.output_path("big_orders"))
        ctx.result.rows_in = orders.count()
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from lakehouse.config import JobSettings, Settings
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.incremental import (
    AVAILABLE_NOW,
    Increment,
    StreamRun,
    StreamSpec,
    Trigger,
    checkpoint_path,
    delta_stream_caught_up,
)
from lakehouse.pipeline.report import JobResult, timed
from lakehouse.spark.delta import DeltaTableRef, table_version
from lakehouse.tuning.aqe import aqe_details, profile_applied
from lakehouse.tuning.pruning import read_report
from lakehouse.writes.idempotency import BatchWrites, commit_metadata

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["JobContext", "UndeclaredTableError", "job_context"]

C = TypeVar("C", bound=JobSettings)


class UndeclaredTableError(LakehouseError, KeyError):
    """A job read or wrote a table its declaration (``inputs``/``outputs``) does not name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass
class JobContext(Generic[C]):
    """Everything one run of one job needs; built by :func:`job_context`."""

    spark: SparkSession
    settings: Settings
    job: str
    batch_id: str
    config: C
    result: JobResult
    writes: BatchWrites
    #: Free-form values a runner passes down (e.g. options of the command line).
    extras: dict[str, Any] = field(default_factory=dict)
    #: When the job's streams run increments: AvailableNow (batch run) or a processing time.
    trigger: Trigger = AVAILABLE_NOW
    #: The job's streaming queries, in the order they were started.
    streams: list[StreamRun] = field(default_factory=list)
    #: Held while one of the job's handlers runs: a job's increments run one at a time.
    handler_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: Continuous runs: streams over tables that did not exist yet, each a call that
    #: starts the stream once its table exists (True) or does nothing (False).
    pending: list[Callable[[], bool]] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------------ tables

    def _check(self, table: str, kind: str) -> None:
        declared = getattr(self.config, kind)
        if table not in declared:
            raise UndeclaredTableError(
                f"job {self.job}: table {table!r} is not declared in its {kind} "
                f"(conf/jobs/{self.job}.yaml); declared: {sorted(declared)}"
            )

    def input_path(self, table: str) -> str:
        """Location of the declared input ``table``."""
        self._check(table, "inputs")
        return self.settings.table_path(table)

    def output_path(self, table: str) -> str:
        """Location of the declared output ``table``."""
        self._check(table, "outputs")
        return self.settings.table_path(table)

    def read(self, table: str) -> DataFrame:
        """The declared input ``table`` as a DataFrame; its scan statistics go to the result."""
        path = self.input_path(table)
        df = self.spark.read.format("delta").load(path)
        self.result.reads[table] = read_report(df, path=path)
        return df

    # ------------------------------------------------------------- increments

    def checkpoint(self, source: str) -> str:
        """Where this job's stream over ``source`` keeps its checkpoint."""
        return checkpoint_path(self.settings, self.job, source)

    def one_at_a_time(self, handler: Callable[[Increment], None]) -> Callable[[Increment], None]:
        """``handler``, run under the job's :attr:`handler_lock`.

        A batch run handles one stream after another anyway. In a continuous run each
        stream is a query of its own, and without the lock two of one job's handlers could
        interleave: gold could load new orders joined to a customer version that a late
        event is replacing while its correction reads ``fact_sales`` without them, and
        those rows would never be corrected. Under the lock, whichever handler runs second
        sees what the first committed."""

        def serialized(inc: Increment) -> None:
            with self.handler_lock:
                handler(inc)

        return serialized

    def _start(self, source: str, stream: DataFrame, handler: Callable[[Increment], None]) -> None:
        spec = StreamSpec(
            job=self.job,
            source=source,
            checkpoint=self.checkpoint(source),
            batch_id=self.batch_id,
            handler=self.one_at_a_time(handler),
            trigger=self.trigger,
            policy=self.writes.policy,
        )
        self.streams.append(spec.start(stream))

    def stream_table(
        self,
        table: str,
        handler: Callable[[Increment], None],
        *,
        change_feed: bool = False,
        starting_version: str | None = None,
    ) -> None:
        """Hand ``handler`` every increment of the declared input (or output) ``table``: rows appended
        since the last run (Delta's streaming source), or with ``change_feed`` every row
        inserted, updated or deleted (its Change Data Feed, with ``_change_type``).

        Without ``change_feed`` the stream follows appends only: a commit that removes rows
        (a ``RESTORE`` by ``lakehouse rollback``, a manual ``DELETE``) is skipped
        (Delta's ``skipChangeCommits``) instead of stopping the stream, and the rows a later
        commit appends again arrive as new. Follow a table that is updated in place
        through its change feed.

        ``starting_version`` (``"latest"`` or a number) is where a *new* checkpoint starts;
        a checkpoint that exists resumes where it stopped. A table that does not exist yet
        has nothing to give: the source is recorded as skipped, and in a continuous run the
        stream waits in :attr:`pending` until :meth:`start_pending` finds the table.
        """
        # a job may follow its own output's change feed
        own = table in self.config.outputs
        path = self.output_path(table) if own else self.input_path(table)
        checkpoint = self.checkpoint(table)
        state = DeltaTableRef.for_path(self.spark, path).version_and_id()
        if state is None:
            waiting = StreamRun(self.job, table, checkpoint, skipped="no table yet")
            self.streams.append(waiting)
            if self.trigger.continuous:

                def start_when_created() -> bool:
                    if not DeltaTableRef.for_path(self.spark, path).exists():
                        return False
                    self.streams.remove(waiting)
                    self.stream_table(
                        table, handler, change_feed=change_feed, starting_version=starting_version
                    )
                    return True

                self.pending.append(start_when_created)
            return
        if not self.trigger.continuous and delta_stream_caught_up(self.spark, checkpoint, *state):
            # a batch run of the query would start, find nothing and stop: not started
            run = StreamRun(self.job, table, checkpoint, skipped=f"nothing new (v{state[0]} read)")
            self.streams.append(run)
            return
        reader = self.spark.readStream.format("delta")
        if change_feed:
            reader = reader.option("readChangeFeed", "true")
        else:
            reader = reader.option("skipChangeCommits", "true")
        if starting_version is not None:
            reader = reader.option("startingVersion", starting_version)
        self._start(table, reader.load(path), handler)

    def stream_files(self, source: str, pattern: str, handler: Callable[[Increment], None]) -> None:
        """Hand ``handler`` every increment of new files matching ``pattern`` (a Hadoop glob
        on the landing area): each increment's ``df`` has one row per file (``path``,
        ``length``, ``modificationTime``); the job reads the files itself.

        Spark's file source remembers the files it has handed out in the checkpoint (and
        logs each increment's file list before the increment runs), so a file is handed
        out once; files of any age count (``maxFileAge`` is set to 100 years). ``source``
        names the checkpoint folder and may not be a table's name (that is how
        :func:`~lakehouse.pipeline.incremental.file_stream_checkpoints` tells file streams
        from table streams).
        """
        if source in self.settings.tables:
            raise ValueError(
                f"job {self.job}: file stream {source!r} has a table's name; name it apart "
                "from every table (its checkpoint folder is named after it)"
            )
        from pyspark.sql.types import (
            BinaryType,
            LongType,
            StringType,
            StructField,
            StructType,
            TimestampType,
        )

        schema = StructType(
            [
                StructField("path", StringType()),
                StructField("modificationTime", TimestampType()),
                StructField("length", LongType()),
                StructField("content", BinaryType()),
            ]
        )
        stream = (
            self.spark.readStream.format("binaryFile")
            .schema(schema)
            .option("maxFileAge", "36500d")
            .load(pattern)
            .select("path", "length", "modificationTime")
        )
        self._start(source, stream, handler)

    def start_pending(self) -> list[str]:
        """Start the :attr:`pending` streams whose tables exist now; their sources."""
        started = []
        for start in list(self.pending):
            if start():
                self.pending.remove(start)
                started.append(self.streams[-1].source)
        return started

    def stream_summary(self) -> None:
        """Record in the result what each stream read: increments, rows, source offsets,
        and ``noop`` (no stream had anything new)."""
        if not self.streams:
            return
        summaries = [run.summary() for run in self.streams]
        self.result.details["increments"] = summaries
        self.result.details["noop"] = not any(s["increments"] for s in summaries)

    def record_versions(self) -> None:
        """Record the current Delta version of every declared output in the result."""
        for table in self.config.outputs:
            self.result.tables[table] = table_version(self.spark, self.settings.table_path(table))


@contextmanager
def job_context(
    spark: SparkSession,
    settings: Settings,
    job: str,
    *,
    batch_id: str,
    extras: dict[str, Any] | None = None,
    trigger: Trigger = AVAILABLE_NOW,
) -> Iterator[JobContext[Any]]:
    """Set up a run of ``job``: AQE profile, commit tagging, idempotent writes, timing.

    On a normal exit the Delta version of each declared output is recorded. The session's
    settings are put back on exit, whether the job succeeded or not.
    """
    config = settings.job(job)
    profile = settings.aqe_profiles[config.aqe_profile]
    result = JobResult(job=job)
    ctx: JobContext[Any] = JobContext(
        spark=spark,
        settings=settings,
        job=job,
        batch_id=batch_id,
        config=config,
        result=result,
        writes=BatchWrites(job, batch_id),
        extras=dict(extras or {}),
        trigger=trigger,
    )
    with (
        timed(result),
        profile_applied(spark, profile),
        commit_metadata(spark, job=job, batch_id=batch_id),
    ):
        result.details["aqe"] = aqe_details(config.aqe_profile, profile)
        yield ctx
        if not trigger.continuous:
            ctx.stream_summary()
        ctx.record_versions()
