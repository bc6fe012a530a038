"""OpenLineage events of each job run, through the official ``openlineage-python`` client.

With ``lineage.transport`` set, :func:`run_pipeline` emits per job a ``START`` event before
it runs and a ``COMPLETE`` (or ``FAIL``) event after. Each event carries:

* the job: ``lineage.namespace`` and the job's name;
* a ``parent`` run facet naming the pipeline run (job ``pipeline``, run id derived from
  the batch id), so a lineage backend groups the jobs of one ``lakehouse run``;
* inputs and outputs: the job's declared ``inputs`` / ``outputs`` tables, the namespace
  from the storage location (``file``, ``s3://<bucket>``, ``hdfs://<host>``) and the name
  from the table's path (OpenLineage's naming conventions), with a ``schema`` facet where
  the table exists;
* on ``COMPLETE``, per output: ``outputStatistics`` (rows and bytes of the Delta commits
  the job made, from their operation metrics) and ``dataQualityAssertions`` (one assertion
  per expectation the job checked on that table: passed when no row failed it);
* on ``FAIL``: an ``errorMessage`` run facet.

Transport (console, file, HTTP) is the client's own configuration (``lineage.transport``).
An event that cannot be sent is logged as a warning: lineage never fails a run.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakehouse import __version__
from lakehouse.spark.delta import DeltaTableRef

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakehouse.config import Settings
    from lakehouse.pipeline.report import JobResult

__all__ = ["PRODUCER", "RunLineage", "dataset_name", "run_lineage"]

log = logging.getLogger(__name__)

#: The ``producer`` URI of every event and facet.
PRODUCER = f"urn:lakehouse-jobs:{__version__}"
#: The job name of the pipeline run every job run points to (``parent`` facet).
PIPELINE_JOB = "pipeline"


def dataset_name(location: str) -> tuple[str, str]:
    """OpenLineage's (namespace, name) of a table location.

    >>> dataset_name("s3a://lake/lakehouse/silver/orders")
    ('s3://lake', 'lakehouse/silver/orders')
    >>> dataset_name("/data/silver/orders")
    ('file', '/data/silver/orders')
    >>> dataset_name("hdfs://nn:8020/lake/orders")
    ('hdfs://nn:8020', '/lake/orders')
    """
    if "://" not in location:
        return "file", location.removeprefix("file:")
    scheme, _, rest = location.partition("://")
    authority, _, path = rest.partition("/")
    if scheme in ("s3", "s3a", "s3n"):
        return f"s3://{authority}", path
    if scheme == "file":
        return "file", "/" + path
    return f"{scheme}://{authority}", "/" + path


def pipeline_run_id(batch_id: str) -> str:
    """The pipeline run's OpenLineage run id: a UUID derived from the batch id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lakehouse:{batch_id}"))


class RunLineage:
    """Emits the events of one pipeline run's jobs (see the module docstring)."""

    def __init__(
        self, spark: SparkSession, settings: Settings, batch_id: str, client: Any = None
    ) -> None:
        if client is None:
            from openlineage.client import OpenLineageClient

            client = OpenLineageClient(config={"transport": settings.lineage.transport})
        self.spark, self.settings, self.batch_id, self.client = spark, settings, batch_id, client
        self._runs: dict[str, str] = {}
        self._before: dict[str, dict[str, int | None]] = {}

    # ------------------------------------------------------------------ events

    def job_started(self, job: str) -> None:
        """Emit ``START`` and remember the outputs' versions (to count what the job adds)."""
        from openlineage.client.uuid import generate_new_uuid

        self._runs[job] = str(generate_new_uuid())
        spec = self.settings.job(job)
        self._before[job] = {t: self._table(t).version() for t in spec.outputs}
        self._emit(job, "START")

    def job_finished(self, job: str, result: JobResult) -> None:
        """Emit ``COMPLETE`` (status ok) or ``FAIL`` with what the job wrote."""
        state = "COMPLETE" if result.status == "ok" else "FAIL"
        self._emit(job, state, result=result)

    # ------------------------------------------------------------------ building

    def _table(self, name: str) -> DeltaTableRef:
        return DeltaTableRef.for_path(self.spark, self.settings.table_path(name))

    def _emit(self, job: str, state: str, *, result: JobResult | None = None) -> None:
        try:
            event = self._event(job, state, result=result)
            self.client.emit(event)
        except Exception as exc:  # noqa: BLE001 - lineage must never fail a run
            log.warning("OpenLineage %s event of job %s not sent: %s", state, job, exc)

    def _event(self, job: str, state: str, *, result: JobResult | None) -> Any:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, job_type_job, parent_run

        spec = self.settings.job(job)
        namespace = self.settings.lineage.namespace
        run_facets: dict[str, Any] = {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=pipeline_run_id(self.batch_id)),
                job=parent_run.Job(namespace=namespace, name=PIPELINE_JOB),
                producer=PRODUCER,
            )
        }
        if result is not None and result.status != "ok":
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=result.error or "failed", programmingLanguage="PYTHON", producer=PRODUCER
            )
        job_facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="SPARK", jobType="JOB", producer=PRODUCER
            )
        }
        return RunEvent(
            eventType=RunState[state],
            eventTime=datetime.now(UTC).isoformat(),
            run=Run(runId=self._runs[job], facets=run_facets),
            job=Job(namespace=namespace, name=job, facets=job_facets),
            producer=PRODUCER,
            inputs=[self._input(t) for t in spec.inputs],
            outputs=[self._output(job, t, result) for t in spec.outputs],
        )

    def _schema(self, table: DeltaTableRef) -> dict[str, Any]:
        from openlineage.client.facet_v2 import schema_dataset

        if not table.exists():
            return {}
        fields = [
            schema_dataset.SchemaDatasetFacetFields(name=f.name, type=f.dataType.simpleString())
            for f in table.read().schema.fields
        ]
        return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields, producer=PRODUCER)}

    def _input(self, name: str) -> Any:
        from openlineage.client.event_v2 import InputDataset

        table = self._table(name)
        namespace, path = dataset_name(table.location)
        return InputDataset(namespace=namespace, name=path, facets=self._schema(table))

    def _output(self, job: str, name: str, result: JobResult | None) -> Any:
        """The output; once the job ended (``result``) with its schema, statistics and checks."""
        from openlineage.client.event_v2 import OutputDataset

        table = self._table(name)
        namespace, path = dataset_name(table.location)
        facets = self._schema(table) if result is not None else {}
        output_facets: dict[str, Any] = {}
        if result is not None:
            output_facets.update(self._statistics(table, self._before[job].get(name)))
            facets.update(_assertions(name, result))
        return OutputDataset(
            namespace=namespace, name=path, facets=facets, outputFacets=output_facets
        )

    def _statistics(self, table: DeltaTableRef, before: int | None) -> dict[str, Any]:
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

        commits = table.commits_since(before)
        if not commits:
            return {}
        rows = sum(int(c.get("numOutputRows", 0) or 0) for c in commits)
        size = sum(
            int(c.get("numOutputBytes", c.get("numTargetBytesAdded", 0)) or 0) for c in commits
        )
        facet = stats.OutputStatisticsOutputDatasetFacet(
            rowCount=rows, size=size, producer=PRODUCER
        )
        return {"outputStatistics": facet}


def _assertions(table: str, result: JobResult) -> dict[str, Any]:
    """One assertion per expectation checked on ``table`` (passed if no row failed it in
    any increment)."""
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

    failed: dict[str, int] = {}
    for check in result.details.get("quality") or []:
        if check.get("table") == table:
            failed[str(check["name"])] = failed.get(str(check["name"]), 0) + int(check["failed"])
    if not failed:
        return {}
    assertions = [
        dq.Assertion(assertion=name, success=n == 0, actual=str(n)) for name, n in failed.items()
    ]
    return {
        "dataQualityAssertions": dq.DataQualityAssertionsDatasetFacet(
            assertions=assertions, producer=PRODUCER
        )
    }


def run_lineage(spark: SparkSession, settings: Settings, batch_id: str) -> RunLineage | None:
    """The run's lineage emitter, or None when ``lineage.transport`` is not set."""
    if settings.lineage.transport is None:
        return None
    return RunLineage(spark, settings, batch_id)
