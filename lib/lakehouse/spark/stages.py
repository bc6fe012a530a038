"""What Spark's status store knows of the application's stages: when each ran, its tasks and
the executors' run time (the run report's timeline), and each executor's task time in
them (the run's cost, :mod:`lakehouse.pipeline.cost`).

Read through the driver's ``AppStatusStore`` (what the Spark UI and REST API show), which
exists with the UI off too. It keeps the last ``spark.ui.retainedStages`` stages (1000).
:class:`StageLog` reads each stage attempt once, newest first, and stops at the stages it
read before, so a run's cost of reading them does not grow with the stages it ran.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["StageLog", "StageTiming", "StagesRead", "executor_added_ms"]

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
_STAGE_WRAPPER = "org.apache.spark.status.StageDataWrapper"
_ENDED = frozenset({"COMPLETE", "FAILED", "SKIPPED"})


def _settle(spark: SparkSession) -> None:
    """Wait (bounded) until the status store has the events queued so far: it learns of
    finished tasks and stages from the listener bus, asynchronously, so an action that just
    returned may not be in it yet."""
    try:
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(SETTLE_MS)
    except Exception as exc:  # noqa: BLE001 - a busy bus only makes the figures late
        log.debug("listener bus not drained in %d ms: %s", SETTLE_MS, exc)


def _millis(option: Any) -> int | None:
    return int(option.get().getTime()) if option.isDefined() else None


@dataclass
class StagesRead:
    """What one :meth:`StageLog.read` found: the stage attempts that ended since the
    previous read."""

    #: Those that ran (skipped stages have no times), by submission time.
    timings: list[StageTiming] = field(default_factory=list)
    #: Per executor (``driver`` in local mode): the summed duration of its tasks in them
    #: (the stage page's "Task Time" per executor), milliseconds.
    executor_task_ms: dict[str, int] = field(default_factory=dict)


class StageLog:
    """The stage attempts of one session that end from now on, each read once.

    Stage ids grow as stages are created, so :meth:`read` walks the status store's stages
    newest first and stops at ids it has read before; a stage still running is read once
    it has ended. Where the store cannot be read, every read is empty (with a debug log
    line): the timeline and the cost are optional, the run is not.
    """

    def __init__(self, spark: SparkSession) -> None:
        self._spark = spark
        #: Every stage id up to this one has been read (or predates the log).
        self._floor = -1
        self._read: set[tuple[int, int]] = set()
        try:
            first = next(self._newest_first(), None)
            self._floor = int(first.info().stageId()) if first is not None else -1
        except Exception as exc:  # noqa: BLE001 - an unreadable store: every read is empty
            log.debug("stages not available: %s", exc)

    def _newest_first(self) -> Any:
        sc = self._spark.sparkContext
        jvm = sc._jvm
        assert jvm is not None
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        wrapper = jvm.java.lang.Class.forName(_STAGE_WRAPPER, True, loader)
        it = sc._jsc.sc().statusStore().store().view(wrapper).reverse().iterator()
        while it.hasNext():
            yield it.next()

    def read(self) -> StagesRead:
        """The stage attempts that ended since the last read."""
        out = StagesRead()
        try:
            _settle(self._spark)
            running = self._collect(out)
        except Exception as exc:  # noqa: BLE001 - timeline and cost are optional
            log.debug("stages not available: %s", exc)
            return StagesRead()
        out.timings.sort(key=lambda s: (s.submitted_ms, s.stage_id))
        newest = max([self._floor, *(sid for sid, _ in self._read)])
        self._floor = min(running) - 1 if running else newest
        self._read = {key for key in self._read if key[0] > self._floor}
        return out

    def _collect(self, out: StagesRead) -> list[int]:
        """Add the newly ended stage attempts to ``out``; the ids of those still running."""
        store = self._spark.sparkContext._jsc.sc().statusStore()
        running = []
        for wrapper in self._newest_first():
            info = wrapper.info()
            key = (int(info.stageId()), int(info.attemptId()))
            if key[0] <= self._floor:
                break
            if key in self._read:
                continue
            if str(info.status().toString()) not in _ENDED:
                running.append(key[0])
                continue
            self._read.add(key)
            submitted, completed = _millis(info.submissionTime()), _millis(info.completionTime())
            if submitted is None or completed is None:
                continue  # skipped: it ran nothing
            out.timings.append(
                StageTiming(
                    stage_id=key[0],
                    name=str(info.name()),
                    submitted_ms=submitted,
                    completed_ms=completed,
                    tasks=int(info.numTasks()),
                    executor_run_ms=int(info.executorRunTime()),
                )
            )
            it = store.executorSummary(key[0], key[1]).iterator()
            while it.hasNext():
                pair = it.next()
                eid = str(pair._1())
                out.executor_task_ms[eid] = out.executor_task_ms.get(eid, 0) + int(
                    pair._2().taskTime()
                )
        return running


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
