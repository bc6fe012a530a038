"""Prometheus metrics of a run: built with prometheus_client, pushed or written as a textfile."""

from __future__ import annotations

import logging
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lakehouse.cli import main
from lakehouse.config import ConfigError, load_config
from lakehouse.pipeline.metrics import export_metrics, run_registry
from lakehouse.pipeline.report import JobResult, RunReport


def _report(run_id="b2", status="ok") -> RunReport:
    quality = [  # two increments checked the same expectations
        {"table": "orders", "name": "positive_quantity", "action": "drop", "failed": 3},
        {"table": "orders", "name": "positive_quantity", "action": "drop", "failed": 2},
    ]
    increments = [{"source": "bronze_orders", "increments": [{"increment": 4}, {"increment": 5}]}]
    landing = [
        {
            "source": "orders_csv",
            "increments": [{"increment": 0, "lag_s": 30.5}, {"increment": 1, "lag_s": 90.0}],
        }
    ]
    return RunReport(
        run_id=run_id,
        env="local",
        started_at="2026-01-02T00:00:00+00:00",
        finished_at="2026-01-02T00:01:40+00:00",
        jobs=[
            JobResult("bronze_ingest", rows_in=12, rows_written=10, rows_quarantined=2,
                      duration_s=40.0, tables={"bronze_orders": 3},
                      details={"increments": landing}),
            JobResult("silver_orders", status=status, rows_in=10, rows_written=5,
                      rows_quarantined=5, duration_s=50.0, tables={"orders": 7},
                      details={"quality": quality, "increments": increments}),
        ],
    )  # fmt: skip


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples, name, **labels):
    return samples[(name, tuple(sorted({"env": "local", **labels}.items())))]


def test_the_registry_holds_the_runs_jobs_expectations_and_freshness():
    from datetime import UTC, datetime

    written = datetime(2026, 1, 1, 12, tzinfo=UTC)
    registry = run_registry(_report(), last_writes={"orders": (written, "b1")})
    samples = _samples(generate_latest(registry).decode())
    assert _value(samples, "lakehouse_run_success") == 1
    assert _value(samples, "lakehouse_run_duration_seconds") == 100.0
    assert _value(samples, "lakehouse_job_rows_in", job="bronze_ingest") == 12
    assert _value(samples, "lakehouse_job_rows_quarantined", job="silver_orders") == 5
    assert _value(samples, "lakehouse_job_duration_seconds", job="silver_orders") == 50.0
    assert _value(samples, "lakehouse_job_increments", job="silver_orders") == 2
    # the lag where it is known (landing files): the largest of the job's increments
    assert _value(samples, "lakehouse_job_increment_lag_seconds", job="bronze_ingest") == 90.0
    assert (
        "lakehouse_job_increment_lag_seconds",
        (("env", "local"), ("job", "silver_orders")),
    ) not in samples
    assert _value(samples, "lakehouse_expectation_failed_rows", job="silver_orders",
                  table="orders", expectation="positive_quantity", action="drop") == 5  # fmt: skip
    assert (
        _value(samples, "lakehouse_table_last_success_timestamp_seconds", table="orders")
        == written.timestamp()
    )
    failed = _samples(
        generate_latest(run_registry(_report(status="failed"), last_writes={})).decode()
    )
    assert _value(failed, "lakehouse_run_success") == 0
    assert _value(failed, "lakehouse_job_success", job="silver_orders") == 0


class _Receiver(BaseHTTPRequestHandler):
    """A Pushgateway stand-in: records each request's method, path and body."""

    requests: ClassVar[list[tuple[str, str, str]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.requests.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pushgateway():
    _Receiver.requests = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Receiver.requests
    server.shutdown()
    server.server_close()


def test_push_to_a_pushgateway_and_write_a_textfile(tmp_path, pushgateway):
    url, requests = pushgateway
    textfile = tmp_path / "lakehouse.prom"
    settings = load_config(
        "local",
        overrides={
            "paths": {"data_root": str(tmp_path)},
            "metrics": {"pushgateway_url": url, "textfile": str(textfile), "job": "nightly"},
        },
    )
    earlier = _report(run_id="b1")
    earlier.write(settings.reports_path)  # the history: b1 wrote orders v7 ...
    report = _report(run_id="b2")  # ... and b2 left it at v7 (no new write)
    report.write(settings.reports_path)
    assert export_metrics(settings, report) == [url, str(textfile)]
    ((method, path, body),) = requests
    assert (method, path) == ("PUT", "/metrics/job/nightly/env/local")
    pushed = _samples(body)
    assert _value(pushed, "lakehouse_job_rows_written", job="silver_orders") == 5
    # orders was last written by run b1 (it ended 2026-01-02 00:01:40 UTC)
    assert _value(pushed, "lakehouse_table_last_success_timestamp_seconds", table="orders") == (
        1767312100.0
    )
    assert _samples(textfile.read_text()) == pushed


def test_a_failed_push_is_a_warning_not_a_failure(tmp_path, caplog):
    settings = load_config(
        "local",
        overrides={
            "paths": {"data_root": str(tmp_path)},
            "metrics": {"pushgateway_url": "http://127.0.0.1:9"},  # discard port: refused
        },
    )
    with caplog.at_level(logging.WARNING, logger="lakehouse.pipeline.metrics"):
        assert export_metrics(settings, _report()) == []
    assert "metrics: push to http://127.0.0.1:9 failed" in caplog.text


def test_no_metrics_target_exports_nothing(tmp_path):
    settings = load_config("local", overrides={"paths": {"data_root": str(tmp_path)}})
    assert export_metrics(settings, _report()) == []


def test_a_pushgateway_url_must_be_http():
    with pytest.raises(ConfigError, match=r"metrics\.pushgateway_url.*must be an http"):
        load_config("local", overrides={"metrics": {"pushgateway_url": "127.0.0.1:9091"}})


def test_lakehouse_run_exports_the_metrics(spark, tmp_path, monkeypatch, capsys):
    """The CLI writes the textfile after the run report (the pipeline itself stubbed)."""
    import importlib

    import lakehouse.spark.session as session

    cli = importlib.import_module("lakehouse.cli.main")  # the package exports main() itself

    conf_dir = tmp_path / "conf"
    shutil.copytree(load_config("local").conf_dir, conf_dir)
    textfile = tmp_path / "metrics.prom"
    with (conf_dir / "env" / "local.yaml").open("a", encoding="utf-8") as f:
        f.write(f"metrics:\n  textfile: {textfile}\n")
    (tmp_path / "data" / "landing").mkdir(parents=True)
    monkeypatch.setenv("LAKEHOUSE_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setattr(session, "build_spark_session", lambda settings: spark)
    monkeypatch.setattr(cli, "run_pipeline", lambda *a, **k: _report(run_id="cli"))
    assert main(["--conf-dir", str(conf_dir), "run", "all"]) == 0
    assert f"metrics: {textfile}" in capsys.readouterr().out
    samples = _samples(textfile.read_text())
    assert _value(samples, "lakehouse_job_rows_in", job="bronze_ingest") == 12
