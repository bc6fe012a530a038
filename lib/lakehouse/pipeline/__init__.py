"""The job runtime: the job context (:mod:`.context`), incremental streams
(:mod:`.incremental`), the declared job graph (:mod:`.registry`), the runner
(:mod:`.runner`) and run reports (:mod:`.report`).
"""

from lakehouse.pipeline.context import JobContext, UndeclaredTableError, job_context
from lakehouse.pipeline.incremental import Increment, StreamFailedError, Trigger
from lakehouse.pipeline.registry import JobGraphError, JobRegistry, UnknownJobError
from lakehouse.pipeline.report import JobResult, ReconciliationError, RunReport, timed
from lakehouse.pipeline.runner import (
    JobFailedError,
    execute_job,
    full_refresh,
    new_batch_id,
    reset_file_streams,
    run_continuous,
    run_job,
    run_pipeline,
)

__all__ = [
    "Increment",
    "JobContext",
    "JobFailedError",
    "JobGraphError",
    "JobRegistry",
    "JobResult",
    "ReconciliationError",
    "RunReport",
    "StreamFailedError",
    "Trigger",
    "UndeclaredTableError",
    "UnknownJobError",
    "execute_job",
    "full_refresh",
    "job_context",
    "new_batch_id",
    "reset_file_streams",
    "run_continuous",
    "run_job",
    "run_pipeline",
    "timed",
]
