"""The job runtime: the job context (:mod:`.context`), the declared job graph
(:mod:`.registry`), the runner (:mod:`.runner`) and run reports (:mod:`.report`).
"""

from lakehouse.pipeline.context import JobContext, UndeclaredTableError, job_context
from lakehouse.pipeline.registry import JobGraphError, JobRegistry, UnknownJobError
from lakehouse.pipeline.report import JobResult, ReconciliationError, RunReport, timed
from lakehouse.pipeline.runner import (
    JobFailedError,
    execute_job,
    new_batch_id,
    run_job,
    run_pipeline,
)

__all__ = [
    "JobContext",
    "JobFailedError",
    "JobGraphError",
    "JobRegistry",
    "JobResult",
    "ReconciliationError",
    "RunReport",
    "UndeclaredTableError",
    "UnknownJobError",
    "execute_job",
    "job_context",
    "new_batch_id",
    "run_job",
    "run_pipeline",
    "timed",
]
