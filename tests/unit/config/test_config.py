"""Config loading: each error path with its exact message."""

from __future__ import annotations

import pytest

from lakehouse.config import ConfigError, load_config


def _err(overrides=None, env="local", environ=None, conf_dir=None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(env, conf_dir=conf_dir, overrides=overrides, environ=environ or {})
    return str(info.value)


def test_local_defaults_load_frozen(repo_root):
    cfg = load_config("local", conf_dir=repo_root / "conf", environ={})
    assert cfg.spark.master == "local[2]"
    assert cfg.table_path("fact_sales") == str(repo_root / "data" / "gold" / "fact_sales")
    assert cfg.tables["fact_sales"].partition_by == ["order_date"]
    with pytest.raises(Exception, match="frozen"):
        cfg.spark.master = "yarn"  # type: ignore[misc]


def test_env_overlay_and_substitution():
    cfg = load_config("emr", environ={"LAKEHOUSE_DATA_BUCKET": "my-bucket"})
    assert cfg.table_path("orders") == "s3://my-bucket/lakehouse/silver/orders"
    assert cfg.spark.master is None and cfg.spark.delta_package is None
    assert cfg.spark.conf["spark.sql.shuffle.partitions"] == "200"


def test_missing_env_var_names_file_key_and_variable(repo_root):
    assert _err(env="emr") == (
        f"{repo_root / 'conf' / 'env' / 'emr.yaml'}: paths.data_root: environment variable "
        "'LAKEHOUSE_DATA_BUCKET' is not set and has no default "
        "(write ${LAKEHOUSE_DATA_BUCKET:-default} to give one)"
    )


def test_unknown_key_is_an_error():
    assert _err({"spark": {"mastr": "local[1]"}}) == (
        "invalid configuration:\n  <overrides>: spark.mastr: unknown key 'mastr' under spark"
    )


def test_wrong_type_names_allowed_and_found():
    assert _err({"generator": {"orders": "ten"}}) == (
        "invalid configuration:\n  <overrides>: generator.orders: "
        "Input should be a valid integer; found 'ten'"
    )


def test_bad_enum_lists_allowed_values():
    assert _err({"tables": {"orders": {"layer": "platinum"}}}) == (
        "invalid configuration:\n  <overrides>: tables.orders.layer: Input should be 'landing', "
        "'bronze', 'silver', 'gold', 'quarantine' or 'meta'; found 'platinum'"
    )


def test_bad_master():
    assert _err({"spark": {"master": "mesos://x:5050"}}) == (
        "invalid configuration:\n  <overrides>: spark.master: must be local, local[N], "
        "local[*], spark://host:port, yarn or k8s://url; found 'mesos://x:5050'"
    )


def test_unknown_table_reference():
    assert _err({"jobs": {"gold_daily_sales": {"fact_table": "nope"}}}).startswith(
        "invalid configuration:\n  <overrides>: jobs.gold_daily_sales.fact_table: "
        "unknown table 'nope'; allowed: ['bronze_customers',"
    )


def test_unknown_aqe_profile():
    assert _err({"jobs": {"silver_orders": {"aqe_profile": "turbo"}}}) == (
        "invalid configuration:\n  <overrides>: jobs.silver_orders.aqe_profile: "
        "unknown AQE profile 'turbo'; allowed: ['default', 'many-small-files', 'skewed-joins']"
    )


@pytest.mark.parametrize("name", ["bad;name", "x`y", "a b", "t' OR 1=1 --", "1abc"])
def test_hostile_table_names_rejected(name):
    msg = _err({"tables": {name: {"path": "x", "layer": "gold"}}})
    assert f"tables.{name}: invalid identifier {name!r}: must match" in msg


def test_error_names_the_file_that_set_the_value(tmp_path, repo_root):
    repo_conf = repo_root / "conf"
    conf = tmp_path / "conf"
    (conf / "env").mkdir(parents=True)
    (conf / "jobs").mkdir()
    base = (repo_conf / "base.yaml").read_text()
    (conf / "base.yaml").write_text(base)
    for f in (repo_conf / "jobs").glob("*.yaml"):
        (conf / "jobs" / f.name).write_text(f.read_text())
    (conf / "env" / "dev.yaml").write_text("spark:\n  app_name: 5\n")
    assert _err(env="dev", conf_dir=conf) == (
        f"invalid configuration:\n  {conf / 'env' / 'dev.yaml'}: spark.app_name: "
        "Input should be a valid string; found 5"
    )


def test_unknown_environment(repo_root):
    repo_conf = repo_root / "conf"
    known = sorted(p.stem for p in (repo_conf / "env").glob("*.yaml"))
    assert "local" in known and "emr" in known and "kubernetes" in known
    assert _err(env="prod") == (
        f"{repo_conf / 'env' / 'prod.yaml'}: no such environment 'prod'; allowed: {known}"
    )


def test_invalid_yaml_names_file(tmp_path):
    conf = tmp_path / "conf"
    (conf / "env").mkdir(parents=True)
    (conf / "base.yaml").write_text("paths: [unclosed\n")
    (conf / "env" / "local.yaml").write_text("{}\n")
    assert _err(conf_dir=conf).startswith(f"{conf / 'base.yaml'}: invalid YAML:")
