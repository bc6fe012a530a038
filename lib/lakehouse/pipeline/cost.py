"""Estimated cost of each job and run: what it used, priced from a table in the configuration.

What a job used comes from Spark's own task metrics: the task time each executor spent
in the stages the job ran (the stage page's per-executor "Task Time",
:func:`lakehouse.spark.stages.executor_task_ms`) times ``spark.task.cpus`` gives its
executor **core-seconds**. Idle executors and node start-up are not counted: the figure is
what the tasks used, a lower bound of the bill. The run's figure covers the stages of the
whole run, as far as Spark's status store keeps them (``spark.ui.retainedStages``, 1000).

Where those core-seconds ran, and what they cost, comes from the cluster description the
allocation module already takes (``submit.cluster``, :class:`~lakehouse.config.ClusterSpec`)
and the price table ``cost:`` (:class:`~lakehouse.config.models.CostSettings`):

* **Spot or on-demand.** On Kubernetes, the executor pods' node selector
  (``submit.kubernetes.executor_node_selector``) pins them to one capacity with the
  ``lakehouse/capacity`` label: ``spot`` makes all their work spot, ``on-demand`` all
  on-demand. Elsewhere (YARN, EMR, standalone; or a selector without that label) the
  allocation's on-demand floor
  (``minExecutors``: what the on-demand nodes always host) is taken to be the first
  executors added, so the work of the first ``minExecutors`` executors, by add time,
  counts as on-demand and the rest as spot (all on-demand if no executor group is spot).
* **Price of a core-second.** Per capacity, the executor groups' instance-hour prices
  over their cores, weighted by each group's size at ``max_nodes``. A spot core-second
  costs its groups' price times ``1 - spot_discount``; "on-demand only" prices it at
  its groups' full price.
* **The driver** runs for the job's wall time on a ``runs_driver`` group: in
  ``submit.deploy_mode: cluster`` one that also runs executors (YARN's application master
  is a container there), in client mode one that runs none (EMR's primary node, where
  the step's spark-submit runs), else the first. It costs the whole node when that group
  runs no executors, else ``spark.driver.cores`` of it.

Each job's ``details["cost"]`` (and the run's ``RunReport.cost``) holds ``core_s``,
``spot_core_s``, ``spot_share`` and, with prices, ``usd`` (the estimate),
``on_demand_usd`` (the same run had every node been on-demand) and ``driver_usd``.
Runs on a ``local[...]`` master report core-seconds, and ``usd`` only with
``cost.local_core_hour`` set.

Examples
--------
>>> from lakehouse.config.cluster import ClusterSpec
>>> spec = ClusterSpec.parse({"platform": "emr", "node_groups": [
...     {"name": "core", "instance_type": "m7g.xlarge", "cores": 4, "memory_gib": 16,
...      "capacity": "on-demand", "min_nodes": 1, "max_nodes": 1, "runs_driver": True},
...     {"name": "task", "instance_type": "m7g.2xlarge", "cores": 8, "memory_gib": 32,
...      "capacity": "spot", "max_nodes": 4}]})
>>> model = PriceModel.for_cluster(spec, {"m7g.xlarge": 0.16, "m7g.2xlarge": 0.32},
...                                spot_discount=0.6, driver_cores=1)
>>> uses = [ExecutorUse("1", 0, 3600.0), ExecutorUse("2", 1, 3600.0)]  # 1 on-demand, 1 spot
>>> cost = model.estimate(uses, wall_s=3600.0, task_cpus=1)
>>> cost["spot_share"], cost["usd"], cost["on_demand_usd"]
(0.5, 0.096, 0.12)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakehouse.config.cluster import ClusterSpec, NodeGroup
from lakehouse.spark.stages import StageLog, StagesRead, StageTiming, executor_added_ms

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakehouse.config import Settings

__all__ = ["ExecutorUse", "PriceModel", "RunMeter", "executor_use"]

_HOUR = 3600.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutorUse:
    """The task time one executor spent in a window (a job, a run)."""

    executor_id: str
    added_ms: int
    task_s: float


def executor_use(task_ms: Mapping[str, int], added_ms: Mapping[str, int]) -> list[ExecutorUse]:
    """Executors with task time in a window, by when they were added (unknown: last)."""
    uses = [
        ExecutorUse(eid, added_ms.get(eid, 1 << 62), ms / 1000)
        for eid, ms in task_ms.items()
        if ms > 0
    ]
    return sorted(uses, key=lambda u: (u.added_ms, u.executor_id))


def _core_hour(groups: Sequence[NodeGroup], prices: Mapping[str, float]) -> float:
    """USD per core-hour of ``groups``, weighted by their size at ``max_nodes``."""
    cores = sum(g.cores * g.max_nodes for g in groups)
    usd = sum(prices[g.instance_type or g.name] * g.max_nodes for g in groups)
    return usd / cores


@dataclass(frozen=True)
class PriceModel:
    """How executor core-seconds split into spot and on-demand, and what each costs.

    ``None`` prices mean the model counts core-seconds only.
    """

    #: Executors counted as on-demand, first by add time (0: all spot); None = all.
    on_demand_executors: int | None
    on_demand_core_hour: float | None = None
    #: The spot groups' on-demand (list) price per core-hour, and the spot discount.
    spot_list_core_hour: float | None = None
    spot_discount: float = 0.0
    #: USD per hour of the driver (None: no driver cost).
    driver_hour: float | None = None

    @classmethod
    def local(cls, core_hour: float | None) -> PriceModel:
        """A ``local[...]`` master: one machine, no spot, priced per core-hour if known."""
        return cls(on_demand_executors=None, on_demand_core_hour=core_hour)

    @classmethod
    def for_cluster(
        cls,
        spec: ClusterSpec,
        prices: Mapping[str, float],
        *,
        spot_discount: float,
        driver_cores: int,
        pinned: str | None = None,
        driver_in_cluster: bool = False,
    ) -> PriceModel:
        """The model of ``spec`` (see the module docs); ``prices`` may be empty.
        ``pinned`` is the capacity (``spot``, ``on-demand``) executors are pinned to."""
        from lakehouse.deploy.allocation import spot_aware_allocation

        executors = [g for g in spec.node_groups if g.runs_executors]
        spot = [g for g in executors if g.capacity == "spot"]
        on_demand = [g for g in executors if g.capacity == "on-demand"]
        floor: int | None
        if not spot or pinned == "on-demand":
            floor = None  # every executor is on-demand
        elif pinned == "spot":
            floor = 0
        else:
            floor = spot_aware_allocation(spec).min_executors
        if not prices:
            return cls(on_demand_executors=floor)
        od_hour = _core_hour(on_demand or spot, prices)
        spot_hour = _core_hour(spot, prices) if spot else None
        drivers = [g for g in spec.node_groups if g.runs_driver]
        driver = next((g for g in drivers if g.runs_executors == driver_in_cluster), None)
        driver = driver or next(iter(drivers), None)
        driver_hour = None
        if driver is not None:
            node = prices[driver.instance_type or driver.name]
            driver_hour = node if not driver.runs_executors else node * driver_cores / driver.cores
        return cls(floor, od_hour, spot_hour, spot_discount, driver_hour)

    def estimate(
        self, uses: Sequence[ExecutorUse], *, wall_s: float, task_cpus: int
    ) -> dict[str, Any]:
        """``core_s``, ``spot_core_s``, ``spot_share`` and, when priced, ``usd``,
        ``on_demand_usd`` and ``driver_usd`` of a window that took ``wall_s`` seconds."""
        floor = self.on_demand_executors
        core_s = [u.task_s * task_cpus for u in uses]
        on_demand = sum(core_s if floor is None else core_s[:floor])
        total = sum(core_s)
        spot = total - on_demand
        out: dict[str, Any] = {
            "core_s": round(total, 3),
            "spot_core_s": round(spot, 3),
            "spot_share": round(spot / total, 4) if total else None,
        }
        if self.on_demand_core_hour is None:
            return out
        driver = (self.driver_hour or 0.0) * wall_s / _HOUR
        od_rate = self.on_demand_core_hour / _HOUR
        spot_list_rate = (self.spot_list_core_hour or 0.0) / _HOUR
        spot_rate = spot_list_rate * (1 - self.spot_discount)
        out["usd"] = round(on_demand * od_rate + spot * spot_rate + driver, 6)
        out["on_demand_usd"] = round(on_demand * od_rate + spot * spot_list_rate + driver, 6)
        if self.driver_hour is not None:
            out["driver_usd"] = round(driver, 6)
        return out


def _price_model(spark: SparkSession, settings: Settings) -> PriceModel:
    cfg, submit = settings.cost, settings.submit
    local = (spark.sparkContext.master or "").startswith("local")
    if local or submit is None or submit.cluster is None:
        return PriceModel.local(cfg.local_core_hour)
    spec = ClusterSpec.parse(submit.cluster)
    pinned = None
    if spec.platform == "kubernetes":
        from lakehouse.deploy.allocation import CAPACITY_LABEL
        from lakehouse.deploy.kubernetes import ManifestError, parse_selector

        text = submit.kubernetes.executor_node_selector
        try:
            pinned = parse_selector(text).get(CAPACITY_LABEL)
        except ManifestError as exc:  # the manifest refuses it; the cost only guesses
            log.warning("cost: executor node selector %r not understood (%s); the "
                        "on-demand floor decides the spot share", text, exc)  # fmt: skip
    return PriceModel.for_cluster(
        spec,
        cfg.prices,
        spot_discount=cfg.spot_discount,
        driver_cores=int(spark.conf.get("spark.driver.cores", "1") or "1"),
        pinned=pinned,
        driver_in_cluster=submit.deploy_mode == "cluster",
    )


class RunMeter:
    """The Spark stages and the cost of each job of a run, and of the run, on one session.

    Call :meth:`job_started` before each job and :meth:`job_finished` after it; stages
    that ran between jobs count for the run only. :meth:`run_cost` is the whole run's.
    """

    def __init__(self, spark: SparkSession, settings: Settings) -> None:
        self._spark = spark
        self._model = _price_model(spark, settings)
        self._task_cpus = int(spark.conf.get("spark.task.cpus", "1") or "1")
        self._stages = StageLog(spark)
        self._run_ms: dict[str, int] = {}
        self.started = time.time()

    def _add(self, read: StagesRead) -> StagesRead:
        for eid, ms in read.executor_task_ms.items():
            self._run_ms[eid] = self._run_ms.get(eid, 0) + ms
        return read

    def estimate(self, task_ms: Mapping[str, int], *, wall_s: float) -> dict[str, Any]:
        """The estimate of a window whose executors spent ``task_ms`` and took ``wall_s``."""
        uses = executor_use(task_ms, executor_added_ms(self._spark)) if task_ms else []
        return self._model.estimate(uses, wall_s=max(wall_s, 0.0), task_cpus=self._task_cpus)

    def job_started(self) -> None:
        """Count what ran since the last job for the run only."""
        self._add(self._stages.read())

    def job_finished(self, started: float) -> tuple[list[StageTiming], dict[str, Any]]:
        """The stages the job (started at ``started``, Unix time) ran, and its cost."""
        read = self._add(self._stages.read())
        cost = self.estimate(read.executor_task_ms, wall_s=time.time() - started)
        return read.timings, cost

    def run_cost(self) -> dict[str, Any]:
        """The cost of everything since the meter was made."""
        self._add(self._stages.read())
        return self.estimate(self._run_ms, wall_s=time.time() - self.started)
