"""The ``lakehouse`` command: job names come from the declared graph, not from the library."""

from __future__ import annotations

import shutil

from lakehouse.cli import main
from lakehouse.config import load_config
from lakehouse.pipeline import run_pipeline


def test_jobs_lists_the_graph_in_run_order_with_descriptions(capsys):
    assert main(["jobs"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in out if not line.startswith(" ")]
    assert names == [
        "bronze_ingest",
        "silver_customers",
        "silver_orders",
        "gold_daily_sales",
        "maintain",
    ]
    assert out[:4] == [
        "bronze_ingest  [jobs.bronze_ingest]",
        "    landing files -> bronze Delta tables (append-only, with ingestion metadata)",
        "    inputs:  -",
        "    outputs: bronze_customers, bronze_products, bronze_orders, quarantine_bronze, "
        "landing_ledger",
    ]


def test_an_unknown_job_exits_2_naming_the_declared_ones(capsys):
    assert main(["run", "silver_order"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lakehouse: unknown job 'silver_order'; declared jobs: ['bronze_ingest'")


def test_disabled_jobs_are_listed_and_skipped(spark, tmp_path, capsys):
    overrides = {
        "paths": {"data_root": str(tmp_path / "data")},
        "jobs": {"silver_orders": {"enabled": False}},
    }
    settings = load_config("local", overrides=overrides)
    # nothing ran: silver_orders would have failed on its missing bronze input
    report = run_pipeline(spark, settings, jobs=["silver_orders"], batch_id="b1")
    assert report.jobs == []
    conf_dir = tmp_path / "conf"
    shutil.copytree(settings.conf_dir, conf_dir)
    (conf_dir / "jobs" / "silver_orders.yaml").write_text(
        (conf_dir / "jobs" / "silver_orders.yaml").read_text() + "enabled: false\n"
    )
    assert main(["--conf-dir", str(conf_dir), "jobs"]) == 0
    assert "silver_orders  (disabled)  [jobs.silver_orders]" in capsys.readouterr().out


def test_tables_lists_layer_location_description_and_writers(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_DATA_ROOT", str(tmp_path))
    assert main(["tables"]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index(f"bronze_customers  [bronze]  {tmp_path / 'bronze' / 'customers'}")
    assert out[at + 1 : at + 3] == [
        "    raw customer change feed",
        "    written by: bronze_ingest",
    ]
