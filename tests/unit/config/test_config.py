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
    assert cfg.tables["fact_sales"].cluster_by == ["order_date"]
    assert cfg.tables["fact_sales"].partition_by == []
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


# ------------------------------------------------------------------ alias and merge bombs


def _conf_with_local(tmp_path, repo_root, local_yaml: str):
    """A copy of the repository's conf/ whose env/local.yaml is ``local_yaml``."""
    conf = tmp_path / "conf"
    (conf / "env").mkdir(parents=True)
    (conf / "jobs").mkdir()
    (conf / "base.yaml").write_text((repo_root / "conf" / "base.yaml").read_text())
    for f in (repo_root / "conf" / "jobs").glob("*.yaml"):
        (conf / "jobs" / f.name).write_text(f.read_text())
    (conf / "env" / "local.yaml").write_text(local_yaml)
    return conf


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["x0: &a0 [lol]"]
    for i in range(1, levels + 1):
        lines.append(f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _merge_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["x0: &a0 {k: 1}"]
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"x{i}: &a{i} {{<<: [{refs}], k{i}: 1}}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_naming_the_file(tmp_path, repo_root):
    text = _alias_bomb()
    assert len(text) < 600  # nine levels of nine aliases: 9**9 leaves from ~500 bytes
    conf = _conf_with_local(tmp_path, repo_root, text)
    assert _err(conf_dir=conf) == (
        f"{conf / 'env' / 'local.yaml'}: refused: it expands to more than 100000 values; "
        "aliases (*name) and merge keys (<<) repeat what their anchor holds, so a short file "
        "can expand to billions of values: write the values out instead"
    )


def test_merge_key_bomb_is_refused_naming_the_file(tmp_path, repo_root):
    conf = _conf_with_local(tmp_path, repo_root, _merge_bomb())
    assert _err(conf_dir=conf).startswith(
        f"{conf / 'env' / 'local.yaml'}: refused: a mapping merges more than 100000 keys; "
    )


def test_recursive_alias_is_refused(tmp_path, repo_root):
    conf = _conf_with_local(tmp_path, repo_root, "spark: &s {conf: {x: *s}}\n")
    assert _err(conf_dir=conf).startswith(
        f"{conf / 'env' / 'local.yaml'}: refused: it nests deeper than 64 levels; "
    )


def test_small_aliases_still_load(tmp_path, repo_root):
    local = (repo_root / "conf" / "env" / "local.yaml").read_text()
    conf = _conf_with_local(
        tmp_path, repo_root, local + "aqe_profiles:\n  a: &p {skew_join: true}\n  b: *p\n"
    )
    cfg = load_config("local", conf_dir=conf, environ={})
    assert cfg.aqe_profiles["b"].skew_join is True


# ------------------------------------------------------------------ numbers in range


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"spark": {"conf": {"spark.sql.shuffle.partitions": "-7"}}},
            "spark.conf.spark.sql.shuffle.partitions: must be a whole number from 1 to "
            "1000000; found '-7'",
        ),
        (
            {"spark": {"conf": {"spark.default.parallelism": "2147483647"}}},
            "spark.conf.spark.default.parallelism: must be a whole number from 1 to 1000000; "
            "found '2147483647'",
        ),
        (
            {"spark": {"conf": {"spark.driver.memory": "lots"}}},
            "spark.conf.spark.driver.memory: must be a size such as 64m; found 'lots'",
        ),
        (
            {"submit": {"conf": {"spark.executor.instances": "-1"}}},
            "submit.conf.spark.executor.instances: must be a whole number from 0 to 1000000; "
            "found '-1'",
        ),
        (
            {
                "aqe_profiles": {
                    "default": {"extra": {"spark.sql.autoBroadcastJoinThreshold": "-2"}}
                }
            },
            "aqe_profiles.default.extra.spark.sql.autoBroadcastJoinThreshold: must be a size "
            "such as 64m or -1; found '-2'",
        ),
        (
            {"jobs": {"maintain": {"vacuum_retention_hours": float("inf")}}},
            "jobs.maintain.vacuum_retention_hours: Input should be less than or equal to 87600; "
            "found inf",
        ),
        (
            {"jobs": {"maintain": {"vacuum_listing_parallelism": 2147483647}}},
            "jobs.maintain.vacuum_listing_parallelism: Input should be less than or equal to "
            "100000; found 2147483647",
        ),
        (
            {"generator": {"days": 10**8}},
            "generator.days: Input should be less than or equal to 36600; found 100000000",
        ),
    ],
)
def test_numbers_out_of_range_name_the_key(overrides, message):
    assert _err(overrides) == f"invalid configuration:\n  <overrides>: {message}"


def test_yaml_infinity_names_the_file(tmp_path, repo_root):
    local = (repo_root / "conf" / "env" / "local.yaml").read_text()
    conf = _conf_with_local(
        tmp_path, repo_root, local + "jobs:\n  maintain:\n    vacuum_retention_hours: .inf\n"
    )
    assert _err(conf_dir=conf) == (
        f"invalid configuration:\n  {conf / 'env' / 'local.yaml'}: "
        "jobs.maintain.vacuum_retention_hours: Input should be less than or equal to 87600; "
        "found inf"
    )


# ------------------------------------------------------------------ data root and paths


def test_empty_data_root_variable_is_refused(repo_root):
    assert _err(environ={"LAKEHOUSE_DATA_ROOT": ""}) == (
        f"invalid configuration:\n  {repo_root / 'conf' / 'base.yaml'}: paths.data_root: must "
        "not be empty (is the environment variable it is taken from, such as "
        "LAKEHOUSE_DATA_ROOT, set but empty? unset it or give it a path); found ''"
    )


ESCAPE = (
    "must stay inside the data root (no '..'); write an absolute path or URI to point elsewhere"
)


@pytest.mark.parametrize(
    ("overrides", "key", "found"),
    [
        ({"tables": {"orders": {"path": "../../etc"}}}, "tables.orders.path", "../../etc"),
        (
            {"tables": {"orders": {"path": "silver/../../x"}}},
            "tables.orders.path",
            "silver/../../x",
        ),
        ({"paths": {"landing": "../landing"}}, "paths.landing", "../landing"),
        ({"paths": {"reports": "a/../../r"}}, "paths.reports", "a/../../r"),
        (
            {
                "jobs": {
                    "bronze_ingest": {
                        "sources": [
                            {
                                "entity": "orders",
                                "format": "csv",
                                "glob": "../../*.csv",
                                "table": "bronze_orders",
                            }
                        ]
                    }
                }
            },
            "jobs.bronze_ingest.sources.0.glob",
            "../../*.csv",
        ),
    ],
)
def test_relative_paths_may_not_leave_the_data_root(overrides, key, found):
    assert _err(overrides) == (
        f"invalid configuration:\n  <overrides>: {key}: {ESCAPE}; found {found!r}"
    )


def test_table_path_may_not_be_the_data_root_itself():
    assert _err({"tables": {"orders": {"path": "./"}}}) == (
        "invalid configuration:\n  <overrides>: tables.orders.path: must name a folder inside "
        "the data root, not the data root itself; found './'"
    )


def test_absolute_paths_and_uris_are_explicit_and_allowed(tmp_path):
    cfg = load_config(
        "local",
        environ={},
        overrides={
            "tables": {"orders": {"path": str(tmp_path / "elsewhere")}},
            "paths": {"landing": "s3a://bucket/landing"},
        },
    )
    assert cfg.table_path("orders") == str(tmp_path / "elsewhere")
    assert cfg.landing_path == "s3a://bucket/landing"
