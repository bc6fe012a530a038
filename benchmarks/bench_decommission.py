"""Spot interruption benchmark: runtime interrupted / uninterrupted, decommission on vs off.

On a local standalone cluster (master + 2 workers x 1 core x 1 GiB on 127.0.0.1), the
shuffle-heavy job of the cluster tests runs four ways:

- decommission **on** (workers honour SIGPWR, job has ``spark.decommission.enabled`` and
  shuffle/RDD block migration): uninterrupted, then interrupted by SIGPWR to one worker once
  map output exists, followed by SIGKILL of that worker when its executor is decommissioned
  (the node goes away, as a reclaimed spot instance does);
- decommission **off** (Spark's defaults): uninterrupted, then interrupted by SIGKILL of
  one worker at the same point (shuffle output on it is lost and recomputed).

Prints one table with the medians and the ratio interrupted / uninterrupted per mode
(target with decommissioning: <= 1.5). Timings on shared machines are noisy: compare within
a run, use ``--repeats`` and medians.

    .venv/bin/python benchmarks/bench_decommission.py [--repeats 1] [--sleep-ms 2000]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.standalone import StandaloneCluster, SubmittedJob
from lakehouse.deploy.artifacts import build_artifacts

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "tests" / "cluster_jobs" / "shuffle_job.py"
OFF_CONF = [
    "spark.decommission.enabled=false",
    "spark.storage.decommission.enabled=false",
    "spark.storage.decommission.shuffleBlocks.enabled=false",
    "spark.storage.decommission.rddBlocks.enabled=false",
]


def _wait(predicate, job: SubmittedJob, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and job.process.poll() is None:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def run_once(
    work: Path, dist: Path, *, decommission: bool, interrupt: bool, args: argparse.Namespace
) -> float:
    name = f"{'on' if decommission else 'off'}-{'int' if interrupt else 'clean'}-{time.time_ns()}"
    with StandaloneCluster(work / name / "cluster", decommission=decommission) as cluster:
        job_args = ["--dist", str(dist), "--app", str(JOB)]
        for conf in [] if decommission else OFF_CONF:
            job_args += ["--conf", conf]
        job_args += ["--", "--out", str(work / name / "out"), "--rows", str(args.rows)]
        job_args += ["--partitions", str(args.partitions), "--sleep-ms", str(args.sleep_ms)]
        started = time.monotonic()
        job = cluster.submit(
            job_args, env={"LAKEHOUSE_DATA_ROOT": str(work / name)}, log_dir=work / name, name="job"
        )
        with job:  # the driver never outlives the run
            # Interrupt once both executors have run a task: map output lives on each, and both
            # are fully initialised (Spark 4.1.1 can NPE when shuffle blocks migrate to an
            # executor still starting up: SPARK-54796).
            if interrupt and _wait(lambda: len(job.finished_tasks()) >= 2, job, args.timeout):
                executor = sorted(job.finished_tasks())[0]
                worker = cluster.worker_of_executor(job, executor)
                if decommission:
                    cluster.interrupt_worker(worker, graceful=True)
                    done = re.compile(rf"Executor {executor} on \S+ is decommissioned")
                    _wait(lambda: bool(done.search(job.driver_log())), job, 120)
                cluster.interrupt_worker(worker, graceful=False)
            rc = job.wait(args.timeout)
            elapsed = time.monotonic() - started
            if rc != 0:
                raise SystemExit(f"{name}: job failed ({rc}); see {job.stderr}")
            return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--sleep-ms", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--work", default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-decommission-") as tmp:
        work = Path(args.work or tmp)
        dist = work / "dist"
        build_artifacts(REPO, dist, envs=["standalone"])
        results: dict[tuple[bool, bool], list[float]] = {}
        for _ in range(args.repeats):
            for decommission in (True, False):
                for interrupt in (False, True):
                    seconds = run_once(
                        work, dist, decommission=decommission, interrupt=interrupt, args=args
                    )
                    results.setdefault((decommission, interrupt), []).append(seconds)
                    print(
                        f"  decommission={'on ' if decommission else 'off'} "
                        f"interrupted={interrupt!s:5} {seconds:7.1f}s",
                        file=sys.stderr,
                        flush=True,
                    )
    print(f"| decommission | uninterrupted (s) | interrupted (s) | ratio | repeats={args.repeats}")
    print("|---|---|---|---|")
    for decommission in (True, False):
        clean = statistics.median(results[(decommission, False)])
        hit = statistics.median(results[(decommission, True)])
        label = "on (lakehouse.deploy.allocation)" if decommission else "off (Spark default)"
        print(f"| {label} | {clean:.1f} | {hit:.1f} | {hit / clean:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
