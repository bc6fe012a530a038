"""The declared job graph: order from inputs/outputs, and the errors a bad graph gives."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lakehouse.config import ConfigError, load_config
from lakehouse.pipeline import JobGraphError, JobRegistry, UnknownJobError

JOB_MODULE = """
from lakehouse.config import JobSettings


class Config(JobSettings):
    threshold: int = 1


def run(ctx):
    ctx.result.details["threshold"] = ctx.config.threshold
"""


def _conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: dict[str, str], **tables: str):
    """A conf dir with tables a..e (plus ``tables``) and one YAML per job; a job module on path."""
    conf = tmp_path / "conf"
    (conf / "env").mkdir(parents=True)
    (conf / "jobs").mkdir()
    table_lines = "".join(
        f"  {name}: {{layer: silver, path: t/{name}{tables.get(name, '')}}}\n" for name in "abcde"
    )
    (conf / "base.yaml").write_text(
        f"paths: {{data_root: {tmp_path / 'data'}}}\ntables:\n{table_lines}"
    )
    (conf / "env" / "local.yaml").write_text("{}\n")
    for name, body in jobs.items():
        (conf / "jobs" / f"{name}.yaml").write_text(textwrap.dedent(body))
    pkg = tmp_path / "src" / "teamjobs"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "step.py").write_text(JOB_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    return conf


def _job(inputs: str, outputs: str, extra: str = "") -> str:
    return f"module: teamjobs.step\ninputs: [{inputs}]\noutputs: [{outputs}]\n{extra}"


def test_sample_pipeline_order_comes_from_declared_tables():
    registry = JobRegistry.from_settings(load_config("local"))
    assert registry.order() == [
        "bronze_ingest",
        "silver_customers",
        "silver_orders",
        "gold_daily_sales",
        "maintain",
    ]
    assert registry.order(["maintain", "silver_orders"]) == ["silver_orders", "maintain"]
    assert registry.downstream("silver_orders") == ["silver_orders", "gold_daily_sales", "maintain"]


def test_order_follows_the_graph_not_the_names(tmp_path, monkeypatch):
    conf = _conf(
        tmp_path,
        monkeypatch,
        {"z_first": _job("", "a"), "m_second": _job("a", "b"), "a_third": _job("b", "c")},
    )
    registry = JobRegistry.from_settings(load_config("local", conf_dir=conf))
    assert registry.order() == ["z_first", "m_second", "a_third"]
    assert registry.downstream("m_second") == ["m_second", "a_third"]


def test_a_cycle_is_an_error_naming_the_jobs(tmp_path, monkeypatch):
    conf = _conf(
        tmp_path,
        monkeypatch,
        {"one": _job("a", "b"), "two": _job("b", "c"), "three": _job("c", "a")},
    )
    with pytest.raises(JobGraphError, match="the jobs' inputs and outputs form a cycle: ") as err:
        JobRegistry.from_settings(load_config("local", conf_dir=conf))
    assert {"one", "two", "three"} <= set(
        str(err.value).split(": ", 1)[1].split(";")[0].split(" -> ")
    )


def test_an_input_nobody_writes_is_an_error_unless_external(tmp_path, monkeypatch):
    jobs = {"reader": _job("d", "e")}
    conf = _conf(tmp_path, monkeypatch, jobs)
    with pytest.raises(JobGraphError, match="job reader reads 'd', which no job writes"):
        JobRegistry.from_settings(load_config("local", conf_dir=conf))
    conf = _conf(tmp_path / "ext", monkeypatch, jobs, d=", external: true")
    assert JobRegistry.from_settings(load_config("local", conf_dir=conf)).order() == ["reader"]


def test_job_config_comes_from_the_module_and_unknown_keys_are_errors(tmp_path, monkeypatch):
    conf = _conf(tmp_path, monkeypatch, {"step": _job("", "a", "threshold: 7\n")})
    settings = load_config("local", conf_dir=conf)
    assert settings.job("step").threshold == 7  # type: ignore[attr-defined]
    (conf / "jobs" / "step.yaml").write_text(_job("", "a", "treshold: 7\n"))
    with pytest.raises(ConfigError, match=r"jobs/step\.yaml: jobs\.step\.treshold: unknown key"):
        load_config("local", conf_dir=conf)


def test_declaration_errors_name_file_and_key(tmp_path, monkeypatch):
    conf = _conf(tmp_path, monkeypatch, {"step": _job("nope", "a")})
    with pytest.raises(ConfigError, match=r"jobs\.step\.inputs\.0: unknown table 'nope'"):
        load_config("local", conf_dir=conf)
    (conf / "jobs" / "step.yaml").write_text("module: teamjobs.missing\n")
    with pytest.raises(
        ConfigError, match=r"jobs\.step\.module: cannot import job module 'teamjobs\.missing'"
    ):
        load_config("local", conf_dir=conf)


def test_unknown_job_lists_the_declared_ones():
    registry = JobRegistry.from_settings(load_config("local"))
    with pytest.raises(UnknownJobError, match=r"unknown job 'silver_order'; declared jobs: \["):
        registry.order(["silver_order"])
