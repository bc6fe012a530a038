"""Real cluster tests: a Spark standalone master + 2 workers on 127.0.0.1.

The packaged job (wheel + self-contained env archive) is submitted with
``spark-submit.sh standalone``; executors run Python from ``./environment/bin/python``.
The spot drill decommissions one worker with its decommission signal (SIGPWR) in the middle
of a shuffle-heavy job, then kills it (the node is gone), and checks the result and logs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from harness.standalone import StandaloneCluster, SubmittedJob
from lakehouse.deploy.artifacts import Artifacts, build_artifacts

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

ROWS, KEYS, PARTITIONS = 20_000, 20, 6
JOB_TIMEOUT_S = 1200  # shared 2-core machines: generous, never a performance assertion


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Artifacts:
    return build_artifacts(repo_root, tmp_path_factory.mktemp("dist"), envs=["standalone"])


@pytest.fixture()
def shuffle_job(repo_root: Path) -> Path:
    """The shuffle-heavy application the spot drill submits."""
    return repo_root / "tests" / "integration" / "cluster_jobs" / "shuffle_job.py"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    with StandaloneCluster(tmp_path_factory.mktemp("standalone"), workers=2) as running:
        yield running


def _submit(
    cluster: StandaloneCluster,
    dist: Artifacts,
    app: Path,
    out: Path,
    logs: Path,
    *,
    sleep_ms: int,
    name: str,
) -> SubmittedJob:
    args = ["--dist", str(dist.dist_dir), "--app", str(app), "--"]
    args += ["--out", str(out), "--rows", str(ROWS), "--keys", str(KEYS)]
    args += ["--partitions", str(PARTITIONS), "--sleep-ms", str(sleep_ms)]
    return cluster.submit(
        args, env={"LAKEHOUSE_DATA_ROOT": str(out.parent)}, log_dir=logs, name=name
    )


def _assert_result(spark: SparkSession, out: Path) -> None:
    expected_rows = {}
    for i in range(ROWS):
        total, n = expected_rows.get(i % KEYS, (0, 0))
        expected_rows[i % KEYS] = (total + i, n + 1)
    expected = spark.createDataFrame(
        [(k, t, n) for k, (t, n) in sorted(expected_rows.items())], "k long, total long, n long"
    )
    actual = spark.read.format("delta").load(str(out))
    assert_df_equality(
        actual.select("k", "total", "n"), expected, ignore_row_order=True, ignore_nullable=True
    )
    pythons = {p for row in actual.select("pythons").collect() for p in row.pythons}
    versions = {v for row in actual.select("versions").collect() for v in row.versions}
    # Every executor ran the interpreter unpacked from the env archive, with our wheel in it.
    assert pythons and all(re.search(r"/environment/bin/python3\.\d+$", p) for p in pythons), (
        pythons
    )
    assert versions == {"0.1.0"}


def _comparable(spark: SparkSession, path: str):  # type: ignore[no-untyped-def]
    """A table without its run-dependent columns (batch ids, ingestion/processing times)."""
    df = spark.read.format("delta").load(path)
    keep = [c for c in df.columns if not re.search(r"batch|ingest|processed|_at$", c)]
    return df.select(*sorted(keep))


def test_packaged_pipeline_runs_on_standalone_cluster(
    spark: SparkSession, cluster: StandaloneCluster, dist: Artifacts, tmp_path: Path
) -> None:
    """``lakehouse --env standalone run all`` through the packaged entry file."""
    from harness.generator import generate_landing
    from lakehouse.config import load_config
    from lakehouse.pipeline.runner import run_pipeline

    on_cluster = tmp_path / "cluster-data"
    generate_landing(
        str(on_cluster / "landing"), orders=200, days=7, seed=7, malformed_fraction=0.02
    )
    args = ["--dist", str(dist.dist_dir), "--", "--env", "standalone", "run", "all"]
    job = cluster.submit(
        args,
        env={"LAKEHOUSE_DATA_ROOT": str(on_cluster)},
        log_dir=tmp_path / "logs",
        name="pipeline",
    )
    rc = job.wait(JOB_TIMEOUT_S)
    log = job.driver_log()
    assert rc == 0, log[-4000:]
    # The exact command is printed first, secrets redacted, against our master.
    first = log.splitlines()[0]
    assert first.startswith("+ ") and f"--master {cluster.url}" in first
    assert "spark.archives=" in first and first.endswith("--env standalone run all")
    # The run's cost (lakehouse.pipeline.cost): conf/env/standalone.yaml's two 1-core
    # workers, one on-demand (the allocation's floor: the first executor) and one spot;
    # both ran tasks, so part of the core-seconds is spot. No price table: no dollars.
    from lakehouse.pipeline.history import load_runs

    (record,) = load_runs(on_cluster / "_reports")
    assert record.cost["core_s"] > 0 and 0 < record.cost["spot_share"] < 1, record.cost
    assert "usd" not in record.cost

    # Expected, independently: the same pipeline on the same landing files in local mode.
    local = tmp_path / "local-data"
    generate_landing(str(local / "landing"), orders=200, days=7, seed=7, malformed_fraction=0.02)
    settings = load_config("local", overrides={"paths": {"data_root": str(local)}})
    assert run_pipeline(spark, settings, batch_id="expected").ok
    cluster_settings = load_config("standalone", environ={"LAKEHOUSE_DATA_ROOT": str(on_cluster)})
    for table in ("orders", "dim_customer", "fact_sales", "daily_revenue"):
        assert_df_equality(
            _comparable(spark, cluster_settings.table_path(table)),
            _comparable(spark, settings.table_path(table)),
            ignore_row_order=True,
            ignore_nullable=True,
        )


def _wait_for(predicate, timeout: float, what: str, job: SubmittedJob) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if job.process.poll() is not None:
            break
        time.sleep(1)
    raise AssertionError(
        f"timed out waiting for {what}; driver log tail:\n{job.driver_log()[-3000:]}"
    )


def test_spot_drill_graceful_decommission_keeps_result(
    spark: SparkSession,
    cluster: StandaloneCluster,
    dist: Artifacts,
    shuffle_job: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "data" / "drill_result"
    logs = tmp_path / "logs"
    with _submit(cluster, dist, shuffle_job, out, logs, sleep_ms=4000, name="drill") as job:
        _drill(cluster, job)
    _assert_result(spark, out)


def _drill(cluster: StandaloneCluster, job: SubmittedJob) -> None:
    # Interrupt once both executors hold finished map output (shuffle blocks to migrate) and
    # are fully initialised: Spark 4.1.1 can fail with an NPE when blocks migrate to an
    # executor that is still starting (SPARK-54796, fixed upstream).
    _wait_for(lambda: len(job.finished_tasks()) >= 2, JOB_TIMEOUT_S, "tasks on both executors", job)
    victim_executor = sorted(job.finished_tasks())[0]
    worker = cluster.worker_of_executor(job, victim_executor)
    cluster.interrupt_worker(worker, graceful=True)  # the spot notice
    decommissioned = re.compile(rf"Executor {victim_executor} on \S+ is decommissioned")
    _wait_for(lambda: bool(decommissioned.search(job.driver_log())), 300, "decommission", job)
    cluster.interrupt_worker(worker, graceful=False)  # ... and the node is gone
    rc = job.wait(JOB_TIMEOUT_S)
    log = job.driver_log()
    assert rc == 0, log[-4000:]
    assert "Decommission worker" in cluster.worker_log(worker)
    assert re.search(r"gracefully decommissioned: [1-9]", log), log[-3000:]
    assert "ExecutorLostFailure" not in log
