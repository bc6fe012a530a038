"""OpenLineage events of the job runs (``lineage.transport``), received over HTTP on
127.0.0.1, written to a file, logged to the console; checked against what the spec
requires of a RunEvent and its facets."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.generator import generate_landing
from lakehouse.config import ConfigError, Settings, load_config
from lakehouse.pipeline import run_pipeline
from lakehouse.pipeline.lineage import RunLineage, dataset_name, pipeline_run_id
from lakehouse.pipeline.report import JobResult

REPO = Path(__file__).resolve().parents[2]
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def _check_against_spec(event: dict[str, Any]) -> None:
    """What OpenLineage's RunEvent schema (spec 2-0-2) requires, checked by hand: the JSON
    schema file is not shipped by the client package, and only package registries are
    reachable here."""
    for key in ("eventTime", "producer", "schemaURL", "run", "job"):
        assert key in event, key
    assert _ISO.match(event["eventTime"]), event["eventTime"]
    assert event["schemaURL"].startswith("https://openlineage.io/spec/")
    assert event["eventType"] in ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
    uuid.UUID(event["run"]["runId"])
    assert event["job"]["namespace"] and event["job"]["name"]
    facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        assert dataset["namespace"] and dataset["name"]
        facets += dataset.get("facets", {}).values()
        facets += dataset.get("inputFacets", {}).values()
        facets += dataset.get("outputFacets", {}).values()
    for facet in facets:  # every facet names its producer and its schema
        assert facet["_producer"] and facet["_schemaURL"].startswith("https://openlineage.io/")


class _Receiver(BaseHTTPRequestHandler):
    events: list[dict[str, Any]]
    paths: list[str]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).paths.append(f"{self.path} {self.headers.get('Authorization')}")
        type(self).events.append(json.loads(body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    """An HTTP server on 127.0.0.1 that keeps every event POSTed to it."""
    handler = type("Receiver", (_Receiver,), {"events": [], "paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _settings(tmp_path: Path, transport: dict[str, Any] | None) -> Settings:
    return load_config(
        "local",
        conf_dir=REPO / "conf",
        overrides={
            "paths": {"data_root": str(tmp_path / "data")},
            "lineage": {"transport": transport, "namespace": "shop"},
        },
    )


@pytest.mark.slow
def test_each_job_run_sends_start_and_complete_with_its_tables(spark, tmp_path, receiver):
    url, handler = receiver
    auth = {"type": "api_key", "apiKey": "k3y"}  # the client's own keys pass through
    transport = {"type": "http", "url": url, "endpoint": "api/v1/lineage", "auth": auth}
    settings = _settings(tmp_path, transport)
    generate_landing(settings.landing_path, orders=80, days=3, seed=7, malformed_fraction=0.05)
    run_pipeline(spark, settings, jobs=("bronze_ingest", "silver_orders"), batch_id="L1")

    events = handler.events
    assert set(handler.paths) == {"/api/v1/lineage Bearer k3y"}
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("bronze_ingest", "START"),
        ("bronze_ingest", "COMPLETE"),
        ("silver_orders", "START"),
        ("silver_orders", "COMPLETE"),
    ]
    for event in events:
        _check_against_spec(event)
        assert event["job"]["namespace"] == "shop"
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == pipeline_run_id("L1")
        assert (parent["job"]["namespace"], parent["job"]["name"]) == ("shop", "pipeline")
    # a job's START and COMPLETE share its run id; two jobs have two
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"] != events[2]["run"]["runId"]

    done = events[3]
    orders_path = settings.table_path("orders")
    assert [(d["namespace"], d["name"]) for d in done["inputs"]] == [
        dataset_name(settings.table_path(t)) for t in ("bronze_orders", "bronze_products")
    ]
    outputs = {d["name"]: d for d in done["outputs"]}
    orders = outputs[dataset_name(orders_path)[1]]
    assert orders["namespace"] == "file"
    fields = {f["name"]: f["type"] for f in orders["facets"]["schema"]["fields"]}
    assert fields["order_id"] == "string" and "quantity" in fields
    written = spark.read.format("delta").load(orders_path).count()
    stats = orders["outputFacets"]["outputStatistics"]
    assert stats["rowCount"] == written and stats["size"] > 0
    assertions = orders["facets"]["dataQualityAssertions"]["assertions"]
    assert {a["assertion"] for a in assertions} >= {"positive_quantity", "plausible_unit_price"}
    assert all(a["success"] == (a["actual"] == "0") for a in assertions)
    # the START event names the tables before anything is known of them
    assert "outputStatistics" not in events[2]["outputs"][0].get("outputFacets", {})


def test_a_failed_job_sends_fail_with_its_error_and_a_dead_receiver_fails_nothing(
    spark, tmp_path, caplog
):
    log_file = tmp_path / "lineage.jsonl"
    settings = _settings(tmp_path, {"type": "file", "log_file_path": str(log_file), "append": True})
    lineage = RunLineage(spark, settings, "L2")
    lineage.job_started("gold_daily_sales")
    lineage.job_finished(
        "gold_daily_sales", JobResult(job="gold_daily_sales", status="failed", error="boom")
    )
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    for event in events:
        _check_against_spec(event)
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == "boom"

    # nothing listens on this port: the events are lost with a warning, the job goes on
    transport = {"type": "http", "url": "http://127.0.0.1:9", "retry": {"total": 0}}
    dead = _settings(tmp_path, transport)
    quiet = RunLineage(spark, dead, "L3")
    with caplog.at_level(logging.WARNING, logger="lakehouse.pipeline.lineage"):
        quiet.job_started("maintain")
    assert "OpenLineage START event of job maintain not sent" in caplog.text


def test_the_console_transport_logs_each_event(spark, tmp_path, caplog):
    settings = _settings(tmp_path, {"type": "console"})
    with caplog.at_level(logging.INFO, logger="openlineage.client.transport.console"):
        RunLineage(spark, settings, "L4").job_started("maintain")
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("console")]
    assert [(e["job"]["name"], e["eventType"]) for e in logged] == [("maintain", "START")]


def test_lineage_is_off_by_default_and_transports_are_validated(tmp_path):
    from lakehouse.pipeline.lineage import run_lineage

    assert run_lineage(None, _settings(tmp_path, None), "x") is None
    for transport, message in (
        ({"type": "kafka"}, "type must be one of"),
        ({"type": "http"}, "a http transport needs url"),
        ({"type": "file"}, "a file transport needs log_file_path"),
    ):
        with pytest.raises(ConfigError, match=message) as err:
            _settings(tmp_path, transport)
        assert "lineage.transport" in str(err.value)
