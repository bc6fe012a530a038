"""Spot-aware dynamic allocation: sizing, bounds, decommissioning, placement, validation."""

from __future__ import annotations

import pytest

from lakehouse.deploy.allocation import (
    AllocationError,
    ClusterSpec,
    NodeGroup,
    spot_aware_allocation,
)


def _emr_spec(**overrides: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "platform": "emr",
        "node_groups": [
            {
                "name": "primary",
                "cores": 4,
                "memory_gib": 16,
                "capacity": "on-demand",
                "min_nodes": 1,
                "max_nodes": 1,
                "runs_executors": False,
                "runs_driver": True,
            },
            {
                "name": "core",
                "cores": 4,
                "memory_gib": 16,
                "capacity": "on-demand",
                "min_nodes": 2,
                "max_nodes": 3,
                "runs_driver": True,
            },
            {
                "name": "spot",
                "cores": 8,
                "memory_gib": 32,
                "capacity": "spot",
                "min_nodes": 0,
                "max_nodes": 10,
            },
        ],
    }
    spec.update(overrides)
    return spec


def test_executor_fitted_to_smallest_executor_node_and_bounds_from_capacity() -> None:
    plan = spot_aware_allocation(_emr_spec())
    # core node: 4 cores - 1 reserved = 3; (16 - 2) GiB = 14336 MiB; overhead 15% = 2150
    assert (plan.executor_cores, plan.executor_memory_mib, plan.executor_overhead_mib) == (
        3,
        12186,
        2150,
    )
    # core: 1 executor/node; spot: 7 cores // 3 = 2 and 30720 MiB // 14336 = 2 per node
    assert plan.min_executors == 2  # the on-demand floor: 2 core nodes x 1
    assert plan.initial_executors == 2
    assert plan.max_executors == 3 * 1 + 10 * 2
    assert plan.conf["spark.executor.memory"] == "12186m"
    assert plan.conf["spark.executor.memoryOverhead"] == "2150m"
    assert plan.conf["spark.dynamicAllocation.maxExecutors"] == "23"


def test_decommissioning_and_shuffle_tracking_settings() -> None:
    conf = spot_aware_allocation(_emr_spec(spot_warning_s=120, decommission_margin_s=20)).conf
    expected = {
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.shuffleTracking.enabled": "true",
        "spark.decommission.enabled": "true",
        "spark.storage.decommission.enabled": "true",
        "spark.storage.decommission.shuffleBlocks.enabled": "true",
        "spark.storage.decommission.rddBlocks.enabled": "true",
        "spark.storage.decommission.replicationReattemptInterval": "10s",
        "spark.executor.decommission.killInterval": "100s",
        "spark.executor.decommission.forceKillTimeout": "100s",
    }
    assert {k: conf[k] for k in expected} == expected
    assert "spark.storage.decommission.fallbackStorage.path" not in conf


def test_fallback_storage_path_is_passed_through() -> None:
    conf = spot_aware_allocation(_emr_spec(fallback_storage_path="s3://b/fallback/")).conf
    assert conf["spark.storage.decommission.fallbackStorage.path"] == "s3://b/fallback/"


def test_emr_keeps_application_master_on_demand() -> None:
    plan = spot_aware_allocation(_emr_spec())
    assert plan.conf["spark.yarn.am.nodeLabelExpression"] == "ON_DEMAND"
    assert plan.emr_configurations == [
        {
            "Classification": "yarn-site",
            "Properties": {
                "yarn.node-labels.enabled": "true",
                "yarn.node-labels.am.default-node-label-expression": "ON_DEMAND",
            },
        }
    ]
    assert plan.driver_node_selector == {}


def test_kubernetes_places_driver_on_demand_and_executors_on_spot() -> None:
    spec = ClusterSpec(
        platform="kubernetes",
        node_groups=[
            NodeGroup(
                name="od",
                cores=4,
                memory_gib=16,
                capacity="on-demand",
                min_nodes=1,
                max_nodes=2,
                runs_driver=True,
            ),
            NodeGroup(name="spot", cores=4, memory_gib=16, capacity="spot", max_nodes=4),
        ],
    )
    plan = spot_aware_allocation(spec)
    assert plan.driver_node_selector == {"lakehouse/capacity": "on-demand"}
    assert plan.executor_node_selector == {"lakehouse/capacity": "spot"}
    assert plan.executor_tolerations == [
        {"key": "lakehouse/capacity", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}
    ]
    assert plan.conf["spark.kubernetes.driver.node.selector.lakehouse/capacity"] == "on-demand"
    assert plan.conf["spark.kubernetes.executor.node.selector.lakehouse/capacity"] == "spot"
    assert "spark.yarn.am.nodeLabelExpression" not in plan.conf


def test_invalid_description_lists_every_problem() -> None:
    bad = _emr_spec(
        node_groups=[
            {"name": "a", "cores": 0, "memory_gib": 16, "capacity": "spot", "max_nodes": 1},
            {
                "name": "b",
                "cores": 4,
                "memory_gib": 16,
                "capacity": "spot",
                "min_nodes": 3,
                "max_nodes": 1,
            },
        ]
    )
    with pytest.raises(AllocationError) as err:
        spot_aware_allocation(bad)
    assert str(err.value) == (
        "invalid cluster description:\n"
        "  node_groups.0.cores: Input should be greater than or equal to 1\n"
        "  node_groups.1: node group 'b': min_nodes (3) > max_nodes (1)"
    )


def test_driver_on_spot_is_refused() -> None:
    with pytest.raises(AllocationError, match="the driver must run on on-demand capacity"):
        spot_aware_allocation(
            _emr_spec(
                node_groups=[
                    {
                        "name": "s",
                        "cores": 4,
                        "memory_gib": 16,
                        "capacity": "spot",
                        "max_nodes": 2,
                        "runs_driver": True,
                    }
                ]
            )
        )


def test_nodes_too_small_for_an_executor() -> None:
    with pytest.raises(AllocationError) as err:
        spot_aware_allocation(
            _emr_spec(
                node_groups=[
                    {
                        "name": "tiny",
                        "cores": 2,
                        "memory_gib": 2.5,
                        "capacity": "on-demand",
                        "max_nodes": 2,
                    }
                ]
            )
        )
    assert str(err.value) == (
        "node group 'tiny': 2.5 GiB per node leaves 128 MiB of executor heap after reserving "
        "2.0 GiB and 384 MiB overhead; required: at least 512 MiB"
    )
