"""Live progress: rich display on a terminal, heartbeat lines off it, from the status tracker."""

from __future__ import annotations

import importlib
import io
import logging
import shutil
import time

from rich.console import Console

from lakehouse.cli import main
from lakehouse.config import load_config
from lakehouse.pipeline.progress import RunProgress, active_stages
from lakehouse.pipeline.report import RunReport


def _slow_stage(spark) -> None:
    """One Spark stage of 4 tasks, each about 0.6 s."""
    spark.sparkContext.parallelize(range(4), 4).map(lambda x: time.sleep(0.6) or x).count()


def test_nothing_active_between_jobs(spark):
    assert active_stages(spark) == []


def test_heartbeat_lines_name_the_job_and_its_stage_tasks(spark, caplog):
    with (
        caplog.at_level(logging.INFO, logger="lakehouse.pipeline.progress"),
        RunProgress(spark, total=2, interactive=False, heartbeat_s=0.2) as progress,
    ):
        progress.job_started("slow")
        _slow_stage(spark)
        progress.job_finished("slow")
        assert progress.heartbeat() is None  # between jobs: no line
    lines = [r.getMessage() for r in caplog.records]
    assert lines, "no heartbeat line in about 1.2 s at a 0.2 s interval"
    assert all(line.startswith("progress: job slow (1/2) ") for line in lines)
    assert any("stage " in line and "/4 tasks" in line for line in lines)


def test_on_a_terminal_a_rich_display_shows_jobs_and_stage(spark):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with RunProgress(spark, total=2, interactive=True, console=console) as progress:
        progress.job_started("slow")
        _slow_stage(spark)
        progress.job_finished("slow")
    text = out.getvalue()
    assert "jobs done" in text and "1/2" in text  # the run's bar after the first job
    assert "job slow (1/2); stage " in text  # the running job's stage, while it ran


def test_the_cli_heartbeat_follows_progress_heartbeat_seconds(spark, tmp_path, monkeypatch, caplog):
    conf_dir = tmp_path / "conf"
    shutil.copytree(load_config("local").conf_dir, conf_dir)
    with (conf_dir / "env" / "local.yaml").open("a", encoding="utf-8") as f:
        f.write("progress:\n  heartbeat_seconds: 0.2\n")
    (tmp_path / "data" / "landing").mkdir(parents=True)
    monkeypatch.setenv("LAKEHOUSE_DATA_ROOT", str(tmp_path / "data"))
    cli = importlib.import_module("lakehouse.cli.main")
    session = importlib.import_module("lakehouse.spark.session")
    monkeypatch.setattr(session, "build_spark_session", lambda settings: spark)

    def pipeline(*args, progress, **kwargs) -> RunReport:
        progress.job_started("bronze_ingest")
        time.sleep(0.7)
        progress.job_finished("bronze_ingest")
        return RunReport("p1", "local", "2026-01-01T00:00:00+00:00")

    monkeypatch.setattr(cli, "run_pipeline", pipeline)
    with caplog.at_level(logging.INFO, logger="lakehouse.pipeline.progress"):
        assert main(["--conf-dir", str(conf_dir), "run", "all"]) == 0
    beats = [r.getMessage() for r in caplog.records if r.name == "lakehouse.pipeline.progress"]
    assert len(beats) >= 2
    assert beats[0].startswith("progress: job bronze_ingest (1/5) ")
