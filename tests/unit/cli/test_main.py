"""The ``lakehouse`` command: job names come from the declared graph, not from the library."""

from __future__ import annotations

import importlib
import shutil

import pytest

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


def _selected_run(monkeypatch, tmp_path, argv):
    """The jobs and refresh list ``lakehouse run ...`` would run with (no Spark started)."""
    cli = importlib.import_module("lakehouse.cli.main")  # the package exports main()
    (tmp_path / "landing").mkdir(exist_ok=True)
    monkeypatch.setenv("LAKEHOUSE_DATA_ROOT", str(tmp_path))
    seen = {}

    def fake_run(settings, jobs, args, refresh):
        seen.update(jobs=list(jobs), refresh=list(refresh))
        return 0

    monkeypatch.setattr(cli, "_run", fake_run)
    assert main(argv) == 0
    return seen


def test_full_refresh_rebuilds_the_job_and_everything_downstream(monkeypatch, tmp_path):
    downstream = ["silver_customers", "gold_daily_sales", "maintain"]
    seen = _selected_run(monkeypatch, tmp_path, ["run", "silver_customers", "--full-refresh"])
    assert seen == {"jobs": downstream, "refresh": downstream}
    seen = _selected_run(monkeypatch, tmp_path, ["run", "gold_daily_sales", "--full-refresh-all"])
    assert seen["jobs"] == seen["refresh"] and seen["jobs"][0] == "bronze_ingest"
    assert len(seen["jobs"]) == 5
    seen = _selected_run(monkeypatch, tmp_path, ["run", "silver_customers"])
    assert seen == {"jobs": ["silver_customers"], "refresh": []}


def test_full_refresh_flags_exclude_each_other_and_a_bad_trigger_exits_2(
    monkeypatch, tmp_path, capsys
):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "all", "--full-refresh", "--full-refresh-all"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    (tmp_path / "landing").mkdir()
    monkeypatch.setenv("LAKEHOUSE_DATA_ROOT", str(tmp_path))
    assert main(["run", "all", "--continuous", "--trigger", "0s"]) == 2
    assert "invalid trigger interval '0s'" in capsys.readouterr().err
