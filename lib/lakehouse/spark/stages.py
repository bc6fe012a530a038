"""What Spark's status store knows of the application's stages: when each ran, its tasks and
the executors' run time (the data behind the run report's timeline).

Read through the driver's ``AppStatusStore`` (what the Spark UI and REST API show), which
exists with the UI off too. It keeps the last ``spark.ui.retainedStages`` stages (1000).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["StageTiming", "stages_between"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageTiming:
    """One completed (or failed) stage attempt; times in milliseconds since the epoch."""

    stage_id: int
    name: str
    submitted_ms: int
    completed_ms: int
    tasks: int
    #: Summed wall time of the stage's tasks on the executors.
    executor_run_ms: int


def _stage_list(spark: SparkSession) -> list[Any]:
    store = spark.sparkContext._jsc.sc().statusStore()
    gateway = spark.sparkContext._gateway
    jvm = spark.sparkContext._jvm
    assert gateway is not None and jvm is not None
    no_quantiles = gateway.new_array(jvm.double, 0)
    seq = store.stageList(None, False, False, no_quantiles, jvm.java.util.ArrayList())
    out = []
    it = seq.iterator()
    while it.hasNext():
        out.append(it.next())
    return out


def _millis(option: Any) -> int | None:
    return int(option.get().getTime()) if option.isDefined() else None


def stages_between(spark: SparkSession, start_ms: int, end_ms: int) -> list[StageTiming]:
    """Stages submitted in ``[start_ms, end_ms]`` that have ended, by submission time.

    Empty (with a debug log line) where the status store cannot be read.
    """
    try:
        stages = _stage_list(spark)
    except Exception as exc:  # noqa: BLE001 - the timeline is optional, the run is not
        log.debug("stage timings not available: %s", exc)
        return []
    out = []
    for stage in stages:
        submitted, completed = _millis(stage.submissionTime()), _millis(stage.completionTime())
        if submitted is None or completed is None or not start_ms <= submitted <= end_ms:
            continue
        out.append(
            StageTiming(
                stage_id=int(stage.stageId()),
                name=str(stage.name()),
                submitted_ms=submitted,
                completed_ms=completed,
                tasks=int(stage.numTasks()),
                executor_run_ms=int(stage.executorRunTime()),
            )
        )
    return sorted(out, key=lambda s: (s.submitted_ms, s.stage_id))
