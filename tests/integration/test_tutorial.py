"""docs/your-first-job.md, followed step by step in a copy of the repository.

The files the tutorial shows are written from the page itself (each code block whose first
line is ``# <path>``), so a change to the page that breaks the steps fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

STEP_TIMEOUT_S = 900  # shared 2-core machines: generous, never a performance assertion
BLOCK = re.compile(r"```(?:python|yaml)\n# (?P<path>\S+)(?P<note>[^\n]*)\n(?P<body>.*?)```", re.S)


def _copy_repo(repo: Path, dest: Path) -> Path:
    """The repository's files that git does not ignore (what a clone of this tree has)."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, tracked):
        rel = raw.decode()
        src, out = repo / rel, dest / rel
        if src.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)
    return dest


def _apply_tutorial(page: str, root: Path) -> list[str]:
    """Write each file block of the page into ``root``; returns the paths written."""
    written = []
    for block in BLOCK.finditer(page):
        path, body = root / block["path"], block["body"]
        if "under tables:" in block["note"]:
            text = path.read_text()
            path.write_text(text.replace("\ntables:\n", "\ntables:\n" + body, 1))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
        written.append(block["path"])
    return written


def _run(cmd: list[str], root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{cmd} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.mark.slow
def test_tutorial_adds_a_job_that_runs_in_the_pipeline_and_submits(
    spark: SparkSession, repo_root: Path, tmp_path: Path
) -> None:
    root = _copy_repo(repo_root, tmp_path / "repo")
    page = (repo_root / "docs" / "your-first-job.md").read_text()
    written = _apply_tutorial(page, root)
    assert written == [
        "conf/base.yaml",
        "jobs/gold_customer_revenue.py",
        "conf/jobs/gold_customer_revenue.yaml",
        "tests/unit/jobs/test_gold_customer_revenue.py",
    ]
    data = tmp_path / "data"
    env = {
        **os.environ,
        # the copy's lib/ and jobs/ come first, before the installed (editable) ones
        "PYTHONPATH": f"{root / 'lib'}{os.pathsep}{root}",
        "LAKEHOUSE_CONF_DIR": str(root / "conf"),
        "LAKEHOUSE_DATA_ROOT": str(data),
        "LAKEHOUSE_PYTHON": sys.executable,
    }
    lakehouse = [sys.executable, "-m", "lakehouse.cli"]

    # 4. the new test passes with the shared fixture
    _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", written[-1]], root, env)

    # 5. the job is in the graph after its input's writer, and runs in the pipeline
    jobs = _run([*lakehouse, "jobs"], root, env).stdout
    names = [line.split()[0] for line in jobs.splitlines() if not line.startswith(" ")]
    assert names.index("gold_customer_revenue") > names.index("gold_daily_sales"), jobs
    _run([sys.executable, "-m", "harness", "generate", "--orders", "200"], root, env)
    report = _run([*lakehouse, "run", "all"], root, env).stdout
    assert re.search(r"^gold_customer_revenue\s+ok\s", report, re.M), report
    table = str(data / "gold" / "customer_revenue")
    revenue = spark.read.format("delta").load(table)
    fact = spark.read.format("delta").load(str(data / "gold" / "fact_sales"))
    customers = fact.where("customer_id IS NOT NULL").select("customer_id").distinct().count()
    assert revenue.count() == customers > 0

    # 6. packaged and submitted: the wheel carries the job, spark-submit runs it
    dist = tmp_path / "dist"
    _run(["scripts/build-artifacts.sh", "--env", "local", "--out", str(dist)], root, env)
    with zipfile.ZipFile(next(dist.glob("*.whl"))) as wheel:
        assert "jobs/gold_customer_revenue.py" in wheel.namelist()
    submitted = _run(
        ["./spark-submit.sh", "local", "--dist", str(dist), "--", "run", "gold_customer_revenue"],
        root,
        env,
    )
    assert submitted.stderr.splitlines()[0].endswith("run gold_customer_revenue")
    assert re.search(r"^gold_customer_revenue\s+ok\s", submitted.stdout, re.M), submitted.stdout
    history = spark.sql(f"DESCRIBE HISTORY delta.`{table}`").count()
    assert history == 2  # the pipeline run's commit and the submitted run's
