"""Where one ``apply_scd2`` call spends its time, step by step (the bench's 1M-row case).

::

    python benchmarks/profile_scd2.py --layout scattered --repeats 3

Builds the same base table and batch as ``bench_scd2.py`` and applies the batch to a
fresh copy of the table ``--warmup + --repeats`` times. Around each step that
``lakehouse.scd2.apply`` runs (and ``DataFrame.persist`` / ``first``) it keeps the wall time
and sets a Spark job group named after the step, so the Spark UI's REST API can say which jobs ran
in it and for how long. Printed per step: wall seconds per call and the summed durations
of its Spark jobs per call, averaged over the timed runs, and the Py4J calls per call.
Delta runs some jobs of a MERGE concurrently, so the job sum may exceed the wall time; where
it is well below, the rest is driver-side work (building and planning DataFrames, Delta's
data skipping and commit). Nested steps (``chain_metrics/first``) are inside their parent's
figures. With ``--stages`` it also lists the last timed call's jobs in order, each with its
stages: tasks, wall time, summed executor run, CPU and GC time, rows read from input and
from shuffles, and bytes spilled (a single-task stage with much CPU is one core's work;
several tasks' run time exceeds the wall time when they run side by side).

This is a diagnosis tool, not a benchmark: it patches the names ``lakehouse.scd2.apply``
calls, in this process only, and its timers add a little overhead. Compare contenders with
``bench_scd2.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

from bench_scd2 import base_table, change_batch, write_base
from py4j import java_gateway
from pyspark.sql.classic import dataframe as classic_dataframe

from lakehouse.config import load_config
from lakehouse.scd2 import SCD2Spec, apply_scd2
from lakehouse.scd2 import apply as scd2_apply
from lakehouse.spark.session import build_spark_session

#: The steps of one attempt, as ``lakehouse.scd2.apply`` names them (it imports each from
#: its module, so patching the name there times every call it makes).
STEPS = (
    "resolve_layout",
    "batch_stats",
    "per_key",
    "fast_metrics",
    "fast_source",
    "chain_events",
    "classify_chains",
    "chain_metrics",
    "chain_source",
    "merge_difference",
)


def _instrument(owner: Any, name: str, sc: Any, stack: list[str], wall: dict) -> None:
    fn: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        stack.append(name)
        label = "/".join(stack)
        sc.setJobGroup(label, label)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            wall[label].append(time.perf_counter() - start)
            stack.pop()
            sc.setJobGroup("/".join(stack) or "other", "other")

    setattr(owner, name, timed)


def _ui_time(s: str) -> datetime:
    return datetime.strptime(s.replace("GMT", ""), "%Y-%m-%dT%H:%M:%S.%f")


def _took(item: dict[str, Any]) -> float:
    """Seconds from submission to completion of a finished job or stage (UI REST API)."""
    return (_ui_time(item["completionTime"]) - _ui_time(item["submissionTime"])).total_seconds()


def _print_stages(ui: Callable[[str], Any], app: str, first_job: int) -> None:
    """The jobs of the last timed call, in order, each with its completed stages."""
    print(f"\nlast call's jobs and stages (from job {first_job})")
    print(
        f"{'job / stage':<38}{'tasks':>6}{'wall s':>8}{'run s':>8}{'cpu s':>8}"
        f"{'gc s':>7}{'in rows':>10}{'shuffle rows':>13}{'spill MB':>9}"
    )
    for job in sorted(ui(f"/{app}/jobs"), key=lambda j: j["jobId"]):
        if job["jobId"] < first_job or not job.get("completionTime"):
            continue
        label = f"job {job['jobId']} {job.get('jobGroup') or ''}"[:43]
        print(f"{label:<44}{_took(job):>8.3f}")
        for sid in job["stageIds"]:
            for st in ui(f"/{app}/stages/{sid}"):
                if st.get("status") != "COMPLETE":
                    continue  # skipped: its output was reused
                print(
                    f"{'  stage ' + str(sid):<38}{st['numTasks']:>6}"
                    f"{_took(st):>8.3f}{st['executorRunTime'] / 1e3:>8.3f}"
                    f"{st['executorCpuTime'] / 1e9:>8.3f}{st.get('jvmGcTime', 0) / 1e3:>7.3f}"
                    f"{st['inputRecords']:>10,}{st['shuffleReadRecords']:>13,}"
                    f"{st['memoryBytesSpilled'] / 2**20:>9.1f}"
                )


def _job_seconds(
    jobs: list[dict[str, Any]], first_timed_job: int, wall: dict[str, list[float]]
) -> dict[str, float]:
    """Spark job time per step (job group) over the timed calls, from the UI REST API."""
    job_s: dict[str, float] = defaultdict(float)
    for job in jobs:
        group = job.get("jobGroup")
        timed = job["jobId"] >= first_timed_job and (group in wall or group == "other")
        if timed and job.get("completionTime"):
            job_s[str(group)] += _took(job)
    return job_s


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--change-frac", type=float, default=0.01)
    p.add_argument("--layout", choices=["scattered", "clustered"], default="scattered")
    p.add_argument("--deletion-vectors", choices=["on", "off"], default="off")
    p.add_argument("--files", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--ui-port", type=int, default=4077)
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--stages",
        action="store_true",
        help="also list the last timed call's Spark jobs and their stages "
        "(tasks, wall, executor run, CPU and GC time, rows read, bytes spilled)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)

    settings = load_config("local", conf_dir=Path(__file__).resolve().parents[1] / "conf")
    spark = build_spark_session(
        settings,
        app_name="profile-scd2",
        extra_conf={
            "spark.ui.enabled": "true",
            "spark.ui.port": str(args.ui_port),
            "spark.ui.showConsoleProgress": "false",
            **dict(kv.split("=", 1) for kv in args.conf),
        },
    )
    spark.sparkContext.setLogLevel("ERROR")
    sc = spark.sparkContext
    work = Path(tempfile.mkdtemp(prefix="profile-scd2-"))
    try:
        base = str(work / "base")
        meta = ("valid_from", "valid_to", "is_current")
        write_base(
            spark,
            base_table(spark, args.rows, args.files, meta),
            base,
            args.deletion_vectors == "on",
        )
        changes = change_batch(spark, args.rows, args.change_frac, args.layout).localCheckpoint()
        changes.count()

        wall: dict[str, list[float]] = defaultdict(list)
        stack: list[str] = []
        for step in STEPS:
            _instrument(scd2_apply, step, sc, stack, wall)
        for method in ("persist", "first"):
            _instrument(classic_dataframe.DataFrame, method, sc, stack, wall)
        calls = [0]
        send = java_gateway.GatewayClient.send_command

        def counted(self: Any, *a: Any, **k: Any) -> Any:
            calls[0] += 1
            return send(self, *a, **k)

        api = f"http://127.0.0.1:{args.ui_port}/api/v1/applications"

        def ui(path: str) -> Any:
            with urllib.request.urlopen(f"{api}{path}") as r:
                return json.load(r)

        app = ui("")[0]["id"]
        spec = SCD2Spec(keys=["id"], sequence_by="updated_at")
        totals: list[float] = []
        first_timed_job = call_start = 0
        with mock.patch.object(java_gateway.GatewayClient, "send_command", counted):
            for rep in range(-args.warmup, args.repeats):
                # the first job this call will run
                call_start = 1 + max((j["jobId"] for j in ui(f"/{app}/jobs")), default=-1)
                if rep == 0:
                    wall.clear()
                    calls[0] = 0
                    first_timed_job = call_start
                dst = str(work / f"run{rep}")
                shutil.copytree(base, dst)
                sc.setJobGroup("other", "other")
                start = time.perf_counter()
                apply_scd2(spark, dst, changes, spec)
                if rep >= 0:
                    totals.append(time.perf_counter() - start)
                shutil.rmtree(dst)

        job_s = _job_seconds(ui(f"/{app}/jobs"), first_timed_job, wall)

        n = args.repeats
        print(
            f"\napply_scd2: rows={args.rows:,} {args.layout}, deletion vectors "
            f"{args.deletion_vectors}, {n} timed call(s): median "
            f"{statistics.median(totals):.2f} s ({' '.join(f'{t:.2f}' for t in totals)}); "
            f"{calls[0] / n:.0f} Py4J calls per call"
        )
        print(f"{'step':<32}{'wall s':>9}{'jobs s':>9}{'calls':>7}")
        for label in sorted(wall):
            print(
                f"{label:<32}{sum(wall[label]) / n:>9.3f}{job_s[label] / n:>9.3f}"
                f"{len(wall[label]) // n:>7}"
            )
        print(f"{'(outside the steps)':<32}{'':>9}{job_s['other'] / n:>9.3f}")
        if args.stages:
            _print_stages(ui, app, call_start)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
