"""Live progress of a run, fed by Spark's status tracker.

:class:`RunProgress` is told when each job starts and ends (by
:func:`~lakehouse.pipeline.runner.run_pipeline`) and polls
``SparkContext.statusTracker()`` for the active stages' task counts:

* on a terminal, a ``rich`` progress display: the run's jobs done out of all, and the
  running job with its current Spark stage, tasks done/total and the elapsed time;
* off a terminal (CI, EMR step logs, Kubernetes pods), a log line per job start and end
  (the runner's own) plus a heartbeat line every ``progress.heartbeat_seconds`` (30 s by
  default) while a job runs, e.g. ``progress: job silver_orders (3/5) 45 s; stage 17
  (count at NativeMethodAccessorImpl.java:0): 5/8 tasks``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from rich.console import Console

__all__ = ["RunProgress", "StageProgress", "active_stages"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageProgress:
    """One active Spark stage: id, name, tasks completed and in total."""

    stage_id: int
    name: str
    done: int
    total: int

    def describe(self) -> str:
        return f"stage {self.stage_id} ({self.name}): {self.done}/{self.total} tasks"


def active_stages(spark: SparkSession) -> list[StageProgress]:
    """The active stages of ``spark``'s application, from its status tracker."""
    tracker = spark.sparkContext.statusTracker()
    out = []
    for stage_id in sorted(tracker.getActiveStageIds()):
        info = tracker.getStageInfo(stage_id)
        if info is not None:
            out.append(StageProgress(stage_id, info.name, info.numCompletedTasks, info.numTasks))
    return out


class RunProgress:
    """Progress of one run of ``total`` jobs; a context manager that starts the poller.

    Parameters
    ----------
    interactive:
        A ``rich`` live display (a terminal) or heartbeat log lines; default: whether
        stderr is a terminal.
    heartbeat_s:
        Seconds between heartbeat lines (non-interactive).
    console:
        The ``rich`` console to draw on (default: stderr).
    """

    def __init__(
        self,
        spark: SparkSession,
        *,
        total: int,
        interactive: bool | None = None,
        heartbeat_s: float = 30.0,
        console: Console | None = None,
    ) -> None:
        self.spark = spark
        self.total = total
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.heartbeat_s = heartbeat_s
        self.console = console
        self.done = 0
        self.job: str | None = None
        self._job_started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rich: Any = None
        self._run_task: Any = None
        self._job_task: Any = None

    # ------------------------------------------------------------------ runner hooks

    def job_started(self, name: str) -> None:
        self.job = name
        self._job_started = time.monotonic()
        if self._rich is not None:
            self._rich.reset(self._job_task, total=None, description=self._job_line(None))

    def job_finished(self, name: str) -> None:
        self.done += 1
        self.job = None
        if self._rich is not None:
            self._rich.update(self._run_task, completed=self.done)

    # ------------------------------------------------------------------ reporting

    def _job_line(self, stage: StageProgress | None) -> str:
        where = f"job {self.job} ({self.done + 1}/{self.total})" if self.job else "between jobs"
        return where if stage is None else f"{where}; {stage.describe()}"

    def heartbeat(self) -> str | None:
        """The heartbeat line for now (None between jobs)."""
        if self.job is None:
            return None
        stages = active_stages(self.spark)
        elapsed = time.monotonic() - self._job_started
        line = f"progress: job {self.job} ({self.done + 1}/{self.total}) {elapsed:.0f} s"
        if stages:
            line += "; " + ", ".join(s.describe() for s in stages)
        return line

    def _refresh(self) -> None:
        stages = active_stages(self.spark)
        stage = stages[0] if stages else None
        self._rich.update(
            self._job_task,
            description=self._job_line(stage),
            completed=stage.done if stage else 0,
            total=stage.total if stage else None,
        )

    def _poll(self) -> None:
        interval = 0.5 if self.interactive else self.heartbeat_s
        while not self._stop.wait(interval):
            try:
                if self.interactive:
                    self._refresh()
                else:
                    line = self.heartbeat()
                    if line:
                        log.info("%s", line)
            except Exception as exc:  # noqa: BLE001 - progress must never fail a run
                log.debug("progress: status tracker unavailable: %s", exc)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> RunProgress:
        if self.interactive:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._rich = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._rich.start()
            self._run_task = self._rich.add_task("jobs done", total=self.total)
            self._job_task = self._rich.add_task(self._job_line(None), total=None)
        self._thread = threading.Thread(target=self._poll, name="lakehouse-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._rich is not None:
            self._rich.stop()
