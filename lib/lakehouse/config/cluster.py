"""The cluster description (``submit.cluster``): node groups, capacity, spot timings.

It is configuration, so it lives here; :mod:`lakehouse.deploy.allocation` turns it into
Spark settings with :func:`~lakehouse.deploy.allocation.spot_aware_allocation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lakehouse.errors import LakehouseError

__all__ = ["AllocationError", "ClusterSpec", "NodeGroup", "Platform"]

Platform = Literal["standalone", "yarn", "emr", "kubernetes"]


class AllocationError(LakehouseError, ValueError):
    """The cluster description is invalid or no executor fits on its nodes."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeGroup(_Model):
    """One homogeneous group of nodes (an EMR instance group/fleet, a k8s node group).

    Attributes
    ----------
    name:
        Free-form name used in messages.
    cores, memory_gib:
        vCPUs and memory of *one* node.
    capacity:
        ``on-demand`` or ``spot``.
    min_nodes, max_nodes:
        Autoscaling bounds of the group.
    runs_executors:
        Whether executors may be placed here (EMR's primary node does not run executors).
    runs_driver:
        Whether this group may host the driver / YARN application master; must be on-demand.
    """

    name: str = Field(min_length=1)
    instance_type: str | None = None
    cores: int = Field(ge=1)
    memory_gib: float = Field(gt=0)
    capacity: Literal["on-demand", "spot"]
    min_nodes: int = Field(default=0, ge=0)
    max_nodes: int = Field(ge=1)
    runs_executors: bool = True
    runs_driver: bool = False

    @model_validator(mode="after")
    def _check(self) -> NodeGroup:
        if self.min_nodes > self.max_nodes:
            raise ValueError(
                f"node group {self.name!r}: min_nodes ({self.min_nodes}) > max_nodes "
                f"({self.max_nodes})"
            )
        if self.runs_driver and self.capacity == "spot":
            raise ValueError(
                f"node group {self.name!r}: the driver must run on on-demand capacity; "
                "found runs_driver=true on a spot group"
            )
        return self


class ClusterSpec(_Model):
    """What the cluster looks like; input of :func:`spot_aware_allocation`.

    Attributes
    ----------
    platform:
        ``standalone``, ``yarn``, ``emr`` or ``kubernetes``.
    node_groups:
        At least one group; at least one group must run executors.
    executor_cores:
        Preferred cores per executor (capped by what the smallest executor node offers).
    reserved_cores, reserved_memory_gib:
        Per node, kept for the OS, node daemons (YARN NodeManager, kubelet) and sidecars.
    memory_overhead_factor:
        Share of executor memory that goes to off-heap overhead (Python workers live there).
    spot_warning_s:
        The cloud's interruption notice (AWS: 120 s).
    decommission_margin_s:
        How long before the notice expires Spark should be done migrating.
    migration_interval_s:
        How often a decommissioning executor looks for new shuffle/RDD blocks to migrate
        (``spark.storage.decommission.replicationReattemptInterval``, Spark default 30 s).
        An executor only exits after a round that started after its last task finished,
        so with 30 s it can need a minute; keep it well under the spot warning.
    fallback_storage_path:
        Optional ``spark.storage.decommission.fallbackStorage.path`` (e.g. an S3 prefix) for
        blocks no surviving executor can take.
    """

    platform: Platform
    node_groups: list[NodeGroup] = Field(min_length=1)
    executor_cores: int = Field(default=4, ge=1)
    reserved_cores: int = Field(default=1, ge=0)
    reserved_memory_gib: float = Field(default=2.0, ge=0)
    memory_overhead_factor: float = Field(default=0.15, gt=0, lt=1)
    spot_warning_s: int = Field(default=120, ge=30)
    decommission_margin_s: int = Field(default=10, ge=0)
    migration_interval_s: int = Field(default=10, ge=1)
    executor_idle_timeout_s: int = Field(default=60, ge=1)
    shuffle_tracking_timeout_s: int | None = Field(default=None, ge=1)
    fallback_storage_path: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ClusterSpec:
        names = [g.name for g in self.node_groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node group names must be unique; duplicated: {dupes}")
        if not any(g.runs_executors for g in self.node_groups):
            raise ValueError("no node group runs executors (runs_executors=true on none)")
        if self.migration_interval_s >= self.spot_warning_s - self.decommission_margin_s:
            raise ValueError(
                f"migration_interval_s ({self.migration_interval_s}) must be smaller than "
                f"spot_warning_s - decommission_margin_s "
                f"({self.spot_warning_s - self.decommission_margin_s})"
            )
        if self.decommission_margin_s >= self.spot_warning_s:
            raise ValueError(
                f"decommission_margin_s ({self.decommission_margin_s}) must be smaller than "
                f"spot_warning_s ({self.spot_warning_s})"
            )
        return self

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> ClusterSpec:
        """Validate a mapping (from YAML/JSON), raising :class:`AllocationError`."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "<top>"
                msg = str(err["msg"]).removeprefix("Value error, ")
                lines.append(f"{loc}: {msg}")
            raise AllocationError("invalid cluster description:\n  " + "\n  ".join(lines)) from exc
