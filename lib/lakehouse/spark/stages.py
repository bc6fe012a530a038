"""What Spark's status store knows of the application's stages: when each ran, its tasks and
the executors' run time (the run report's timeline), and each executor's task time in
them (the run's cost, :mod:`lakehouse.pipeline.cost`).

Read through the driver's ``AppStatusStore`` (what the Spark UI and REST API show), which
exists with the UI off too. It keeps the last ``spark.ui.retainedStages`` stages (1000).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["StageTiming", "executor_added_ms", "executor_task_ms", "stages_between"]

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


#: How long to wait for the listener bus to deliver queued events to the status store.
SETTLE_MS = 10_000


def _settle(spark: SparkSession) -> None:
    """Wait (bounded) until the status store has the events queued so far: it learns of
    finished tasks and stages from the listener bus, asynchronously, so an action that just
    returned may not be in it yet."""
    try:
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(SETTLE_MS)
    except Exception as exc:  # noqa: BLE001 - a busy bus only makes the figures late
        log.debug("listener bus not drained in %d ms: %s", SETTLE_MS, exc)


def _stage_list(spark: SparkSession) -> list[Any]:
    _settle(spark)
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


def _ended_between(spark: SparkSession, start_ms: int, end_ms: int) -> list[Any]:
    """The status store's stages submitted in ``[start_ms, end_ms]`` that have ended."""
    try:
        stages = _stage_list(spark)
    except Exception as exc:  # noqa: BLE001 - timeline and cost are optional, the run is not
        log.debug("stages not available: %s", exc)
        return []
    out = []
    for stage in stages:
        submitted, completed = _millis(stage.submissionTime()), _millis(stage.completionTime())
        if submitted is not None and completed is not None and start_ms <= submitted <= end_ms:
            out.append(stage)
    return out


def stages_between(spark: SparkSession, start_ms: int, end_ms: int) -> list[StageTiming]:
    """Stages submitted in ``[start_ms, end_ms]`` that have ended, by submission time.

    Empty (with a debug log line) where the status store cannot be read.
    """
    out = []
    for stage in _ended_between(spark, start_ms, end_ms):
        submitted, completed = _millis(stage.submissionTime()), _millis(stage.completionTime())
        assert submitted is not None and completed is not None
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


def executor_task_ms(spark: SparkSession, start_ms: int, end_ms: int) -> dict[str, int]:
    """Per executor (``driver`` in local mode): the summed duration of its tasks in the
    stages submitted in ``[start_ms, end_ms]`` (the stage page's "Task Time" per executor).

    Empty (with a debug log line) where the status store cannot be read.
    """
    out: dict[str, int] = {}
    try:
        store = spark.sparkContext._jsc.sc().statusStore()
        for stage in _ended_between(spark, start_ms, end_ms):
            it = store.executorSummary(stage.stageId(), stage.attemptId()).iterator()
            while it.hasNext():
                pair = it.next()
                key = str(pair._1())
                out[key] = out.get(key, 0) + int(pair._2().taskTime())
    except Exception as exc:  # noqa: BLE001 - the cost is optional, the run is not
        log.debug("executor task times not available: %s", exc)
        return {}
    return out


def executor_added_ms(spark: SparkSession) -> dict[str, int]:
    """When each executor the application has had (live or removed) was added, by id."""
    try:
        it = spark.sparkContext._jsc.sc().statusStore().executorList(False).iterator()
        out = {}
        while it.hasNext():
            e = it.next()
            out[str(e.id())] = int(e.addTime().getTime())
        return out
    except Exception as exc:  # noqa: BLE001 - the cost is optional, the run is not
        log.debug("executors not available: %s", exc)
        return {}
