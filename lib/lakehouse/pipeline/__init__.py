"""The job runtime: run reports (:mod:`.report`) and the runner (:mod:`.runner`)."""

from lakehouse.pipeline.report import (
    JobResult,
    ReconciliationError,
    RunReport,
    timed,
)
from lakehouse.pipeline.runner import (
    PIPELINE,
    JobFailedError,
    new_batch_id,
    run_job,
    run_pipeline,
)

__all__ = [
    "PIPELINE",
    "JobFailedError",
    "JobResult",
    "ReconciliationError",
    "RunReport",
    "new_batch_id",
    "run_job",
    "run_pipeline",
    "timed",
]
