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
  declared ``inputs``, ``ctx.output_path`` only declared ``outputs``.

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

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from lakehouse.config import JobSettings, Settings
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.report import JobResult, timed
from lakehouse.spark.delta import table_version
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
    )
    with (
        timed(result),
        profile_applied(spark, profile),
        commit_metadata(spark, job=job, batch_id=batch_id),
    ):
        result.details["aqe"] = aqe_details(config.aqe_profile, profile)
        yield ctx
        ctx.record_versions()
