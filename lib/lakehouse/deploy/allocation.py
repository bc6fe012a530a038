"""Spot-aware dynamic allocation: from a description of the cluster to Spark settings.

Spot capacity is cheap and disappears with a two-minute notice. Spark survives that well
when four things hold, and :func:`spot_aware_allocation` produces the settings for all of
them from one validated :class:`ClusterSpec`:

1. Executors are sized to *fit the nodes*: the smallest executor node decides the
   executor's cores and memory, so an executor fits on every node it may land on and no
   node is left with unusable slivers.
2. *Dynamic allocation with shuffle tracking* (``spark.dynamicAllocation.shuffleTracking``):
   no external shuffle service is needed (Kubernetes, standalone), executors holding live
   shuffle data are not released, the floor (``minExecutors``) is what on-demand capacity
   can always host and the ceiling (``maxExecutors``) what every node at its maximum hosts.
3. *Graceful decommissioning* (``spark.decommission.enabled``) with shuffle and RDD block
   migration: when a spot node gets its notice, the executor stops taking tasks and hands
   its blocks to the survivors instead of dying with them; the kill interval is the spot
   warning minus a safety margin, so Spark finishes before the cloud pulls the plug.
4. The *driver / application master stays on on-demand capacity*: YARN node-label
   expressions on EMR (``ON_DEMAND``), node selectors on Kubernetes.

Examples
--------
>>> from lakehouse.deploy.allocation import ClusterSpec, NodeGroup, spot_aware_allocation
>>> spec = ClusterSpec(
...     platform="kubernetes",
...     node_groups=[
...         NodeGroup(name="core", cores=4, memory_gib=16, capacity="on-demand",
...                   min_nodes=1, max_nodes=2, runs_driver=True),
...         NodeGroup(name="spot", cores=8, memory_gib=32, capacity="spot",
...                   min_nodes=0, max_nodes=10),
...     ],
... )
>>> plan = spot_aware_allocation(spec)
>>> plan.conf["spark.executor.cores"], plan.conf["spark.executor.memory"]
('3', '12186m')
>>> plan.min_executors, plan.initial_executors, plan.max_executors
(1, 1, 22)
>>> plan.conf["spark.executor.decommission.killInterval"]
'110s'
>>> plan.driver_node_selector
{'lakehouse/capacity': 'on-demand'}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lakehouse.config.cluster import AllocationError, ClusterSpec, NodeGroup

__all__ = [
    "AllocationError",
    "AllocationPlan",
    "ClusterSpec",
    "NodeGroup",
    "spot_aware_allocation",
]

#: The node label / node-selector key the Terraform modules put on every node.
CAPACITY_LABEL = "lakehouse/capacity"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AllocationPlan(_Model):
    """Output of :func:`spot_aware_allocation`.

    Attributes
    ----------
    conf:
        Spark properties (``--conf`` pairs) for every target.
    executor_cores, executor_memory_mib, executor_overhead_mib, executors_per_node:
        The fitted executor size.
    min_executors, initial_executors, max_executors:
        Dynamic-allocation bounds.
    driver_node_selector, executor_node_selector, executor_tolerations:
        Kubernetes placement (empty elsewhere).
    emr_configurations:
        EMR ``Configurations`` (YARN node labels) for the cluster definition (empty elsewhere).
    notes:
        Human-readable reasoning, printed by ``lakehouse submit plan``.
    """

    conf: dict[str, str]
    executor_cores: int
    executor_memory_mib: int
    executor_overhead_mib: int
    executors_per_node: int
    min_executors: int
    initial_executors: int
    max_executors: int
    driver_node_selector: dict[str, str] = Field(default_factory=dict)
    executor_node_selector: dict[str, str] = Field(default_factory=dict)
    executor_tolerations: list[dict[str, str]] = Field(default_factory=list)
    emr_configurations: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


_MIN_OVERHEAD_MIB = 384  # Spark's floor for spark.executor.memoryOverhead


def _fit(spec: ClusterSpec, group: NodeGroup) -> tuple[int, int, int, int]:
    """(cores, heap MiB, overhead MiB, executors per node) for executors on ``group``."""
    usable_cores = group.cores - spec.reserved_cores if group.cores > spec.reserved_cores else 1
    usable_mib = int((group.memory_gib - spec.reserved_memory_gib) * 1024)
    cores = min(spec.executor_cores, usable_cores)
    per_node = usable_cores // cores
    total_mib = usable_mib // per_node if per_node else 0
    overhead = max(_MIN_OVERHEAD_MIB, int(total_mib * spec.memory_overhead_factor))
    heap = total_mib - overhead
    if heap < 512:
        raise AllocationError(
            f"node group {group.name!r}: {group.memory_gib} GiB per node leaves {heap} MiB of "
            f"executor heap after reserving {spec.reserved_memory_gib} GiB and {overhead} MiB "
            "overhead; required: at least 512 MiB"
        )
    return cores, heap, overhead, per_node


@dataclass(frozen=True)
class _ExecutorSize:
    """The fitted executor: sized on the smallest executor node (``group``)."""

    group: NodeGroup
    cores: int
    heap_mib: int
    overhead_mib: int


@dataclass(frozen=True)
class _ExecutorCounts:
    per_node: dict[str, int]
    min: int
    initial: int
    max: int


@dataclass(frozen=True)
class _Placement:
    """Driver-on-on-demand / executors-on-spot rules of one platform."""

    conf: dict[str, str] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


def _executor_groups(spec: ClusterSpec) -> list[NodeGroup]:
    return [g for g in spec.node_groups if g.runs_executors]


def _executor_size(spec: ClusterSpec) -> _ExecutorSize:
    """The smallest executor node decides the size, so an executor fits on every node."""
    smallest = min(_executor_groups(spec), key=lambda g: (g.cores, g.memory_gib))
    cores, heap, overhead, _ = _fit(spec, smallest)
    return _ExecutorSize(group=smallest, cores=cores, heap_mib=heap, overhead_mib=overhead)


def _executor_counts(spec: ClusterSpec, size: _ExecutorSize) -> _ExecutorCounts:
    """Executors per node of each group; the on-demand floor, the start and the ceiling."""
    groups = _executor_groups(spec)
    per_node = {}
    for group in groups:
        usable_cores = max(group.cores - spec.reserved_cores, 1)
        usable_mib = int((group.memory_gib - spec.reserved_memory_gib) * 1024)
        per_node[group.name] = min(
            usable_cores // size.cores, usable_mib // (size.heap_mib + size.overhead_mib)
        )
    most = sum(per_node[g.name] * g.max_nodes for g in groups)
    on_demand_floor = sum(
        per_node[g.name] * g.min_nodes for g in groups if g.capacity == "on-demand"
    )
    least = min(on_demand_floor, most)
    at_min_size = sum(per_node[g.name] * g.min_nodes for g in groups)
    initial = min(max(least, at_min_size, 1), most)
    return _ExecutorCounts(per_node=per_node, min=least, initial=initial, max=most)


def _kill_interval_s(spec: ClusterSpec) -> int:
    return spec.spot_warning_s - spec.decommission_margin_s


def _spark_conf(spec: ClusterSpec, size: _ExecutorSize, counts: _ExecutorCounts) -> dict[str, str]:
    """Executor size, dynamic allocation with shuffle tracking, graceful decommissioning."""
    kill_interval = _kill_interval_s(spec)
    conf: dict[str, str] = {
        "spark.executor.cores": str(size.cores),
        "spark.executor.memory": f"{size.heap_mib}m",
        "spark.executor.memoryOverhead": f"{size.overhead_mib}m",
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.shuffleTracking.enabled": "true",
        "spark.dynamicAllocation.minExecutors": str(counts.min),
        "spark.dynamicAllocation.initialExecutors": str(counts.initial),
        "spark.dynamicAllocation.maxExecutors": str(counts.max),
        "spark.dynamicAllocation.executorIdleTimeout": f"{spec.executor_idle_timeout_s}s",
        "spark.decommission.enabled": "true",
        "spark.storage.decommission.enabled": "true",
        "spark.storage.decommission.shuffleBlocks.enabled": "true",
        "spark.storage.decommission.rddBlocks.enabled": "true",
        "spark.storage.decommission.replicationReattemptInterval": f"{spec.migration_interval_s}s",
        "spark.executor.decommission.killInterval": f"{kill_interval}s",
        "spark.executor.decommission.forceKillTimeout": f"{kill_interval}s",
    }
    if spec.shuffle_tracking_timeout_s is not None:
        conf["spark.dynamicAllocation.shuffleTracking.timeout"] = (
            f"{spec.shuffle_tracking_timeout_s}s"
        )
    if spec.fallback_storage_path:
        conf["spark.storage.decommission.fallbackStorage.path"] = spec.fallback_storage_path
    return conf


def _yarn_placement(spec: ClusterSpec) -> _Placement:
    """YARN node labels: EMR labels nodes by market; the AM (and so the driver in cluster
    mode) must land on ON_DEMAND, executors may go anywhere."""
    return _Placement(
        conf={"spark.yarn.am.nodeLabelExpression": "ON_DEMAND"},
        plan={
            "emr_configurations": [
                {
                    "Classification": "yarn-site",
                    "Properties": {
                        "yarn.node-labels.enabled": "true",
                        "yarn.node-labels.am.default-node-label-expression": "ON_DEMAND",
                    },
                }
            ]
        },
        note="driver/AM on ON_DEMAND YARN node label (spark.yarn.am.nodeLabelExpression)",
    )


def _kubernetes_placement(spec: ClusterSpec) -> _Placement:
    """Node selectors: the driver on on-demand nodes, executors on spot nodes if any."""
    has_spot = any(g.capacity == "spot" for g in _executor_groups(spec))
    driver_sel = {CAPACITY_LABEL: "on-demand"}
    exec_sel = {CAPACITY_LABEL: "spot" if has_spot else "on-demand"}
    tolerations = (
        [{"key": CAPACITY_LABEL, "operator": "Equal", "value": "spot", "effect": "NoSchedule"}]
        if has_spot
        else []
    )
    conf = {f"spark.kubernetes.driver.node.selector.{k}": v for k, v in driver_sel.items()}
    conf |= {f"spark.kubernetes.executor.node.selector.{k}": v for k, v in exec_sel.items()}
    return _Placement(
        conf=conf,
        plan={
            "driver_node_selector": driver_sel,
            "executor_node_selector": exec_sel,
            "executor_tolerations": tolerations,
        },
        note=f"driver node selector {driver_sel}, executors {exec_sel} (+ toleration)",
    )


#: How each platform keeps the driver on on-demand capacity (standalone has no means to).
_PLACEMENTS: dict[str, Callable[[ClusterSpec], _Placement]] = {
    "yarn": _yarn_placement,
    "emr": _yarn_placement,
    "kubernetes": _kubernetes_placement,
}


def _notes(spec: ClusterSpec, size: _ExecutorSize, counts: _ExecutorCounts) -> list[str]:
    group = size.group
    return [
        f"executor size fitted to the smallest executor node {group.name!r} "
        f"({group.cores} cores, {group.memory_gib} GiB): {size.cores} cores, "
        f"{size.heap_mib} MiB heap + {size.overhead_mib} MiB overhead",
        f"executors per node: {counts.per_node}; min {counts.min} (on-demand floor), "
        f"initial {counts.initial}, max {counts.max}",
        f"decommission: kill after {_kill_interval_s(spec)}s (spot warning "
        f"{spec.spot_warning_s}s - margin {spec.decommission_margin_s}s), shuffle + RDD "
        "blocks migrate",
    ]


def spot_aware_allocation(spec: ClusterSpec | Mapping[str, Any]) -> AllocationPlan:
    """Spark settings for ``spec``: fitted executors, dynamic allocation, decommissioning.

    Parameters
    ----------
    spec:
        A :class:`ClusterSpec` or a mapping validated into one.

    Returns
    -------
    AllocationPlan
        ``conf`` holds the Spark properties; placement fields hold the platform's
        driver-on-on-demand / executors-on-spot rules.

    Raises
    ------
    AllocationError
        Invalid description, or nodes too small for an executor.
    """
    if not isinstance(spec, ClusterSpec):
        spec = ClusterSpec.parse(spec)
    size = _executor_size(spec)
    counts = _executor_counts(spec, size)
    placement = _PLACEMENTS.get(spec.platform, lambda _: _Placement())(spec)
    notes = _notes(spec, size, counts) + ([placement.note] if placement.note else [])
    return AllocationPlan(
        conf={**_spark_conf(spec, size, counts), **placement.conf},
        executor_cores=size.cores,
        executor_memory_mib=size.heap_mib,
        executor_overhead_mib=size.overhead_mib,
        executors_per_node=counts.per_node[size.group.name],
        min_executors=counts.min,
        initial_executors=counts.initial,
        max_executors=counts.max,
        notes=notes,
        **placement.plan,
    )
