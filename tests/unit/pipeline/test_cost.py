"""Cost per job and run: executor core-seconds from Spark's task metrics, priced from config."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lakehouse.config import ClusterSpec, ConfigError, load_config
from lakehouse.pipeline.cost import ExecutorUse, PriceModel, RunMeter, executor_use
from lakehouse.pipeline.history import RunRecord
from lakehouse.pipeline.html_report import render_html
from lakehouse.pipeline.metrics import run_registry
from lakehouse.pipeline.report import JobResult, RunReport, cost_summary
from lakehouse.spark.stages import StageLog

PRICES = {"m7g.xlarge": 0.16, "m7g.2xlarge": 0.32}  # 0.04 USD per core-hour on both


def _spec(platform: str = "emr", *, spot: bool = True) -> ClusterSpec:
    groups = [
        {"name": "primary", "instance_type": "m7g.xlarge", "cores": 4, "memory_gib": 16,
         "capacity": "on-demand", "min_nodes": 1, "max_nodes": 1, "runs_executors": False,
         "runs_driver": True},
        {"name": "core", "instance_type": "m7g.xlarge", "cores": 4, "memory_gib": 16,
         "capacity": "on-demand", "min_nodes": 2, "max_nodes": 3, "runs_driver": True},
    ]  # fmt: skip
    if spot:
        groups.append({"name": "task", "instance_type": "m7g.2xlarge", "cores": 8,
                       "memory_gib": 32, "capacity": "spot", "max_nodes": 10})  # fmt: skip
    return ClusterSpec.parse({"platform": platform, "node_groups": groups})


def _uses(*task_hours: float) -> list[ExecutorUse]:
    """One executor per value, added in that order, each with that many task-hours."""
    return [ExecutorUse(str(i + 1), 1000 + i, h * 3600) for i, h in enumerate(task_hours)]


def test_the_first_executors_up_to_the_on_demand_floor_are_on_demand_the_rest_spot():
    # core: 4 cores - 1 reserved = one 3-core executor per node, 2 nodes at least: floor 2
    model = PriceModel.for_cluster(_spec(), PRICES, spot_discount=0.75, driver_cores=1)
    assert model.on_demand_executors == 2
    cost = model.estimate(_uses(1, 1, 2, 4), wall_s=3600, task_cpus=1)
    assert cost["core_s"] == 8 * 3600 and cost["spot_core_s"] == 6 * 3600
    assert cost["spot_share"] == 0.75
    # 2 on-demand core-hours at 0.04 + 6 spot core-hours at 0.01 + the whole primary node
    # (client mode: the driver runs where spark-submit runs, the primary) for an hour
    assert cost["usd"] == pytest.approx(0.08 + 0.06 + 0.16)
    assert cost["on_demand_usd"] == pytest.approx(0.08 + 0.24 + 0.16)
    assert cost["driver_usd"] == pytest.approx(0.16)


def test_task_cpus_multiply_the_core_seconds():
    model = PriceModel.for_cluster(_spec(), PRICES, spot_discount=0.75, driver_cores=1)
    assert model.estimate(_uses(1), wall_s=0, task_cpus=2)["core_s"] == 7200


def test_in_cluster_deploy_mode_the_driver_takes_its_cores_of_a_core_node():
    model = PriceModel.for_cluster(
        _spec(), PRICES, spot_discount=0.75, driver_cores=2, driver_in_cluster=True
    )
    assert model.estimate([], wall_s=3600, task_cpus=1)["driver_usd"] == pytest.approx(0.08)


def test_executors_pinned_by_the_kubernetes_node_selector_are_all_spot_or_all_on_demand():
    spec = _spec("kubernetes")
    uses = _uses(1, 1, 1)
    spot = PriceModel.for_cluster(spec, PRICES, spot_discount=0.5, driver_cores=1, pinned="spot")
    assert spot.estimate(uses, wall_s=0, task_cpus=1)["spot_share"] == 1.0
    on_demand = PriceModel.for_cluster(
        spec, PRICES, spot_discount=0.5, driver_cores=1, pinned="on-demand"
    )
    cost = on_demand.estimate(uses, wall_s=0, task_cpus=1)
    assert cost["spot_share"] == 0.0 and cost["usd"] == cost["on_demand_usd"]
    unpinned = PriceModel.for_cluster(spec, PRICES, spot_discount=0.5, driver_cores=1)
    assert unpinned.estimate(uses, wall_s=0, task_cpus=1)["spot_core_s"] == 3600  # floor 2


def test_a_cluster_without_spot_groups_is_all_on_demand():
    model = PriceModel.for_cluster(_spec(spot=False), PRICES, spot_discount=0.5, driver_cores=1)
    cost = model.estimate(_uses(1, 1, 1), wall_s=0, task_cpus=1)
    assert cost["spot_core_s"] == 0 and cost["usd"] == pytest.approx(0.12)


def test_without_prices_only_core_seconds_are_reported():
    model = PriceModel.for_cluster(_spec(), {}, spot_discount=0.5, driver_cores=1)
    cost = model.estimate(_uses(1, 1, 1), wall_s=60, task_cpus=1)
    assert cost == {"core_s": 10800.0, "spot_core_s": 3600.0, "spot_share": 0.3333}
    assert cost_summary(cost) == "10800.0 core-s (spot 33%)"


def test_local_runs_are_priced_per_core_hour_only_when_configured():
    assert "usd" not in PriceModel.local(None).estimate(_uses(1), wall_s=1, task_cpus=1)
    cost = PriceModel.local(0.05).estimate(_uses(2), wall_s=1, task_cpus=1)
    assert cost["usd"] == pytest.approx(0.1) and cost["spot_share"] == 0.0
    assert "driver_usd" not in cost


def test_executor_use_orders_the_executors_that_ran_tasks_by_add_time():
    task_ms = {"1": 2000, "2": 1000, "driver": 0, "gone": 500}
    added = {"1": 10, "2": 7, "driver": 5}  # "gone": no longer known, so counted last
    assert executor_use(task_ms, added) == [
        ExecutorUse("2", 7, 1.0),
        ExecutorUse("1", 10, 2.0),
        ExecutorUse("gone", 1 << 62, 0.5),
    ]


def test_the_meter_reads_each_jobs_stages_and_task_time_once(spark, tmp_path):
    settings = load_config(
        "local",
        overrides={"paths": {"data_root": str(tmp_path)}, "cost": {"local_core_hour": 36.0}},
    )
    spark.range(10).count()  # before the meter: never counted
    meter = RunMeter(spark, settings)
    meter.job_started()
    started = time.time()
    spark.range(0, 200_000, numPartitions=4).selectExpr("sum(id * id)").collect()
    stages, cost = meter.job_finished(started)
    assert stages and cost["core_s"] > 0 and cost["spot_core_s"] == 0
    # local mode: the only executor is the driver; its task time is the stages' run time
    # plus the tasks' deserialization and result handling, so at least that
    assert cost["core_s"] >= sum(s.executor_run_ms for s in stages) / 1000
    assert cost["usd"] == pytest.approx(cost["core_s"] / 100, abs=1e-5)  # 36 USD/h = 0.01/s
    meter.job_started()
    assert meter.job_finished(time.time()) == ([], {**cost, "core_s": 0.0, "usd": 0.0,
        "on_demand_usd": 0.0, "spot_share": None})  # fmt: skip
    spark.range(5).count()  # between jobs: the run's, no job's
    run = meter.run_cost()
    assert run["core_s"] > cost["core_s"]


def test_a_stage_still_running_is_read_once_it_has_ended(spark):
    import threading

    log = StageLog(spark)
    slow = spark.sparkContext.parallelize(range(2), 2).map(lambda x: time.sleep(2) or x)
    worker = threading.Thread(target=slow.collect)
    worker.start()
    deadline = time.time() + 60
    while not spark.sparkContext.statusTracker().getActiveStageIds():
        assert time.time() < deadline, "the slow stage never started"
        time.sleep(0.05)
    assert log.read().timings == []  # running: not read yet
    worker.join(timeout=120)
    ended = log.read()
    assert [s.tasks for s in ended.timings] == [2]
    assert sum(ended.executor_task_ms.values()) >= 4000  # two tasks of 2 s
    assert log.read().timings == []  # each stage once


def test_every_node_group_needs_a_price_once_there_are_prices():
    """Groups without an instance type (standalone's) are priced by name."""
    prices = {"worker-on-demand": 0.1}
    with pytest.raises(ConfigError, match=r"no price for node group\(s\).*worker-spot \(no inst"):
        load_config("standalone", overrides={"cost": {"prices": prices}})
    both = load_config("standalone", overrides={"cost": {"prices": {**prices, "worker-spot": 0.1}}})
    assert both.cost.prices["worker-spot"] == 0.1
    with pytest.raises(ConfigError, match=r"spot_discount"):
        load_config("local", overrides={"cost": {"spot_discount": 1.0}})


def _report() -> RunReport:
    priced = {"core_s": 7200.0, "spot_core_s": 3600.0, "spot_share": 0.5, "usd": 0.05,
              "on_demand_usd": 0.08, "driver_usd": 0.01}  # fmt: skip
    return RunReport(
        run_id="r1",
        env="emr",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T01:00:00+00:00",
        jobs=[JobResult("silver_orders", duration_s=3600.0, details={"cost": priced})],
        cost={**priced, "core_s": 7300.0, "usd": 0.06},
    )


def test_the_run_report_prints_and_keeps_the_cost_of_each_job_and_the_run():
    report = _report()
    text = report.render()
    assert "cost: 7200.0 core-s (spot 50%), est. $0.0500 (on-demand only $0.0800)" in text
    assert text.splitlines()[-1].startswith("run cost: 7300.0 core-s (spot 50%), est. $0.0600")
    record = RunRecord.from_dict(json.loads(report.to_json()))
    assert record.cost["usd"] == 0.06 and record.report().render() == text


def test_the_html_page_has_a_cost_table():
    page = render_html(RunRecord.from_dict(json.loads(_report().to_json())))
    assert '<table id="cost">' in page
    assert "<td>silver_orders</td><td class=num>7,200.0</td><td class=num>50%</td>" in page
    assert '<tr class="total"><td>run</td><td class=num>7,300.0</td>' in page
    assert "$0.0800" in page


def test_the_metrics_carry_the_cost_when_there_is_one():
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(
            generate_latest(run_registry(_report(), last_writes={})).decode()
        )
        for s in family.samples
    }
    job = (("env", "emr"), ("job", "silver_orders"))
    assert samples[("lakehouse_job_cost_usd", job)] == 0.05
    assert samples[("lakehouse_job_cost_on_demand_usd", job)] == 0.08
    assert samples[("lakehouse_job_spot_share", job)] == 0.5
    assert samples[("lakehouse_run_core_seconds", (("env", "emr"),))] == 7300.0
    assert samples[("lakehouse_run_cost_usd", (("env", "emr"),))] == 0.06
    unpriced = _report()
    unpriced.cost = {"core_s": 5.0, "spot_core_s": 0.0, "spot_share": None}
    unpriced.jobs[0].details["cost"] = dict(unpriced.cost)
    text = generate_latest(run_registry(unpriced, last_writes={})).decode()
    assert "lakehouse_run_core_seconds" in text and "lakehouse_job_core_seconds" in text
    assert "cost_usd" not in text and "spot_share" not in text  # unknown: no sample


class _ClusterSession:
    """What the cost model reads of a session on a cluster: its master and conf."""

    def __init__(self, master: str) -> None:
        from types import SimpleNamespace

        self.sparkContext = SimpleNamespace(master=master)
        self.conf = SimpleNamespace(get=lambda key, default=None: default)


@pytest.mark.parametrize(
    ("selector", "floor"),
    [
        ("lakehouse/capacity=spot", 0),  # conf/env/kubernetes.yaml's default: all spot
        ("lakehouse/capacity=on-demand", None),  # all on-demand
        ('{"lakehouse/capacity": "spot", "zone": "a"}', 0),  # a Terraform map output
        ("pool=spark", 1),  # no capacity label: the allocation's on-demand floor
        ("not a selector", 1),  # the manifest refuses it; the cost warns and guesses
    ],
)
def test_on_kubernetes_the_executor_node_selector_decides_the_capacity(selector, floor, caplog):
    from lakehouse.pipeline.cost import _price_model

    settings = load_config(
        "kubernetes",
        environ={"LAKEHOUSE_DATA_BUCKET": "b"},
        overrides={"submit": {"kubernetes": {"executor_node_selector": selector}}},
    )
    model = _price_model(_ClusterSession("k8s://https://api:443"), settings)  # type: ignore[arg-type]
    assert model.on_demand_executors == floor
    assert ("not understood" in caplog.text) == (selector == "not a selector")
    # conf/env/kubernetes.yaml's prices: m7g.xlarge 0.1632 / 4 cores per core-hour
    assert model.on_demand_core_hour == pytest.approx(0.1632 / 4)
