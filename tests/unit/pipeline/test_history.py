"""Run history from the JSON run reports: list, show, diff (no Spark)."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from lakehouse.cli import main
from lakehouse.config import ConfigError, load_config, parse_duration
from lakehouse.pipeline.history import (
    HistoryError,
    check_freshness,
    find_run,
    last_writes,
    load_runs,
    render_diff,
    render_freshness,
)
from lakehouse.pipeline.report import JobResult, RunReport


def _report(directory, run_id, started, finished, jobs) -> None:
    RunReport(
        run_id=run_id,
        env="local",
        started_at=started,
        finished_at=finished,
        jobs=[JobResult(**j) for j in jobs],
    ).write(str(directory))


@pytest.fixture
def reports(tmp_path, monkeypatch):
    """Two runs (a full load, then an increment) under a data root's _reports folder."""
    monkeypatch.setenv("LAKEHOUSE_DATA_ROOT", str(tmp_path))
    directory = tmp_path / "_reports"
    _report(
        directory,
        "20260101T000000Z-aaaa1111",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:02:00+00:00",
        [
            {"job": "bronze", "rows_in": 100, "rows_written": 98, "rows_quarantined": 2,
             "duration_s": 80.0},
            {"job": "gold", "rows_in": 98, "rows_written": 98, "duration_s": 30.0},
        ],
    )  # fmt: skip
    _report(
        directory,
        "20260102T000000Z-bbbb2222",
        "2026-01-02T00:00:00+00:00",
        "2026-01-02T00:00:30+00:00",
        [
            {"job": "bronze", "rows_in": 10, "rows_written": 10, "duration_s": 20.0},
            {"job": "gold", "status": "failed", "error": "boom", "duration_s": 5.0},
            {"job": "maintain", "duration_s": 1.0},
        ],
    )  # fmt: skip
    return directory


def test_runs_lists_newest_first_with_totals(reports, capsys):
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "run", "env", "started", "(UTC)", "secs", "status", "rows", "in", "written", "quarant.",
    ]  # fmt: skip
    assert lines[2].split() == [
        "20260102T000000Z-bbbb2222", "local", "2026-01-02", "00:00:00", "30.0", "failed",
        "10", "10", "0",
    ]  # fmt: skip
    assert lines[3].split() == [
        "20260101T000000Z-aaaa1111", "local", "2026-01-01", "00:00:00", "120.0", "ok",
        "198", "196", "2",
    ]  # fmt: skip
    assert main(["runs", "--limit", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_runs_show_prints_the_run_as_it_printed_itself(reports, capsys):
    assert main(["runs", "show", "20260101T000000Z-aaaa"]) == 0  # a unique prefix
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "run 20260101T000000Z-aaaa1111 (env local)"
    assert out[3].split()[:6] == ["bronze", "ok", "100", "98", "2", "80.0"]


def test_runs_diff_compares_time_and_rows_per_job(reports, capsys):
    assert main(["runs", "diff", "20260101", "20260102"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "a = 20260101T000000Z-aaaa1111 (local), b = 20260102T000000Z-bbbb2222 (local)"
    )
    rows = {line.split()[0]: line for line in out[3:]}
    assert rows["bronze"].split() == ["bronze", "80.0", "20.0", "-75%", "100", "10", "98", "10",
                                      "2", "0", "ok"]  # fmt: skip
    assert rows["gold"].split()[-3:] == ["ok", "->", "failed"]
    assert rows["maintain"] == "maintain           only in run b"
    assert rows["run"].split()[:4] == ["run", "120.0", "30.0", "-75%"]


def test_an_unknown_or_ambiguous_run_id_exits_2_naming_the_folder(reports, capsys):
    assert main(["runs", "show", "nope"]) == 2
    assert capsys.readouterr().err == (
        f"lakehouse: no run 'nope' in {reports} (2 runs; `lakehouse runs` lists them)\n"
    )
    assert main(["runs", "diff", "2026", "20260102"]) == 2
    assert "run id '2026' is ambiguous" in capsys.readouterr().err


def test_an_unreadable_report_is_named_and_left_out(reports, caplog):
    bad = reports / "run_broken.json"
    bad.write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="lakehouse.pipeline.history"):
        records = load_runs(reports)
    assert [r.run_id for r in records] == ["20260102T000000Z-bbbb2222", "20260101T000000Z-aaaa1111"]
    assert f"run report {bad}: cannot be read" in caplog.text
    assert bad.exists()  # nothing is deleted


def test_a_report_without_finished_at_counts_the_jobs_time(tmp_path):
    _report(tmp_path, "old", "2026-01-01T00:00:00+00:00", None,
            [{"job": "a", "duration_s": 2.5}, {"job": "b", "duration_s": 1.0}])  # fmt: skip
    (record,) = load_runs(tmp_path)
    assert record.duration_s == 3.5
    with pytest.raises(HistoryError):
        find_run([record], "x", directory=tmp_path)
    assert "only in run" not in render_diff(record, record)


def test_no_reports_yet(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAKEHOUSE_DATA_ROOT", str(tmp_path))
    assert main(["runs"]) == 0
    assert capsys.readouterr().out == f"no runs in {tmp_path / '_reports'}\n"


# ---------------------------------------------------------------- freshness (--check-slo)

T0 = "2026-01-01T00:00:00+00:00"


def _runs_writing_daily_revenue(directory) -> None:
    """Run a writes v0; run b leaves it at v0 (a no-op); run c fails after moving it."""
    _report(directory, "a", T0, "2026-01-01T01:00:00+00:00",
            [{"job": "gold", "tables": {"daily_revenue": 0}}])  # fmt: skip
    _report(directory, "b", "2026-01-02T00:00:00+00:00", "2026-01-02T01:00:00+00:00",
            [{"job": "gold", "tables": {"daily_revenue": 0}}])  # fmt: skip
    _report(directory, "c", "2026-01-03T00:00:00+00:00", "2026-01-03T01:00:00+00:00",
            [{"job": "gold", "status": "failed", "tables": {"daily_revenue": 1}}])  # fmt: skip


def test_a_no_op_or_failed_run_is_not_a_write(tmp_path):
    _runs_writing_daily_revenue(tmp_path)
    when, run_id = last_writes(load_runs(tmp_path))["daily_revenue"]
    assert (run_id, when) == ("a", datetime(2026, 1, 1, 1, tzinfo=UTC))


def test_freshness_against_the_slo(tmp_path):
    _runs_writing_daily_revenue(tmp_path)
    settings = load_config(
        "local",
        overrides={
            "tables": {"daily_revenue": {"freshness_slo": "26h"}, "orders": {"freshness_slo": "7d"}}
        },
    )
    records = load_runs(tmp_path)
    ok_now = datetime(2026, 1, 2, 2, tzinfo=UTC)  # 25 h after run a ended
    (daily, orders) = check_freshness(settings, records, now=ok_now)
    assert (daily.table, daily.late, daily.age) == ("daily_revenue", False, timedelta(hours=25))
    assert (orders.table, orders.late, orders.last_write) == ("orders", True, None)
    late = check_freshness(settings, records, now=datetime(2026, 1, 2, 4, tzinfo=UTC))
    assert late[0].late is True  # 27 h > 26 h
    assert render_freshness(late, runs=3).splitlines() == [
        "LATE daily_revenue: last written 27.0 h ago by run a (2026-01-01 01:00 UTC); "
        "freshness_slo 26.0 h",
        "LATE orders: no successful write in the 3 runs of the history (freshness_slo 168.0 h)",
    ]


def test_check_slo_exits_1_naming_the_late_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAKEHOUSE_DATA_ROOT", str(tmp_path))
    conf_dir = tmp_path / "conf"
    shutil.copytree(load_config("local").conf_dir, conf_dir)
    assert main(["--conf-dir", str(conf_dir), "runs", "--check-slo"]) == 0
    assert capsys.readouterr().out == "no table declares a freshness_slo\n"
    with (conf_dir / "env" / "local.yaml").open("a", encoding="utf-8") as f:
        f.write("tables:\n  daily_revenue:\n    freshness_slo: 26h\n")
    _report(tmp_path / "_reports", "recent", datetime.now(UTC).isoformat(), None,
            [{"job": "gold", "tables": {"daily_revenue": 3}}])  # fmt: skip
    assert main(["--conf-dir", str(conf_dir), "runs", "--check-slo"]) == 0
    assert capsys.readouterr().out.startswith("ok   daily_revenue: last written 0.0 h ago")
    _runs_writing_daily_revenue(tmp_path / "_reports")  # older runs; "recent" stays the last
    (tmp_path / "_reports" / "run_recent.json").unlink()
    assert main(["--conf-dir", str(conf_dir), "runs", "--check-slo"]) == 1
    assert capsys.readouterr().out.startswith("LATE daily_revenue: last written ")


def test_a_bad_freshness_slo_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"tables\.orders\.freshness_slo.*invalid duration '26'"):
        load_config("local", overrides={"tables": {"orders": {"freshness_slo": "26"}}})
    assert parse_duration("90m") == timedelta(minutes=90)
