"""spark-submit command building, effective configuration, redaction, the shell entry."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.cli.submit import main
from lakehouse.config import ConfigError, load_config
from lakehouse.deploy.artifacts import ArtifactPaths
from lakehouse.deploy.spark_submit import SubmitError, build_submit_command, effective_conf
from lakehouse.redaction import redact_argv

ARTIFACTS = ArtifactPaths(
    wheel="/d/lakehouse_jobs-0.1.0-py3-none-any.whl",
    entry="/d/lakehouse_entry.py",
    env_archive="/d/lakehouse-env-0.1.0-py3.11.tar.gz",
)


def _conf_pairs(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "--conf"]
    return dict(p.split("=", 1) for p in pairs)


def test_standalone_command_has_master_archive_and_job_args() -> None:
    settings = load_config("standalone", environ={})
    cmd = build_submit_command(
        settings,
        target="standalone",
        artifacts=ARTIFACTS,
        job_args=["run", "all", "--env", "x"],
        spark_submit="spark-submit",
    )
    assert cmd.argv[:8] == [
        "spark-submit",
        "--master",
        "spark://127.0.0.1:7077",
        "--deploy-mode",
        "client",
        "--name",
        "lakehouse",
        "--py-files",
    ]
    assert cmd.argv[-5:] == ["/d/lakehouse_entry.py", "run", "all", "--env", "x"]
    conf = _conf_pairs(cmd.argv)
    assert conf["spark.archives"] == "/d/lakehouse-env-0.1.0-py3.11.tar.gz#environment"
    assert conf["spark.pyspark.python"] == "./environment/bin/python"
    assert conf["spark.pyspark.driver.python"] == os.environ.get(
        "PYSPARK_DRIVER_PYTHON", sys.executable
    )
    # spot-aware allocation from submit.cluster is merged in
    assert conf["spark.decommission.enabled"] == "true"
    assert conf["spark.dynamicAllocation.shuffleTracking.enabled"] == "true"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_conf_precedence_cli_over_submit_over_allocation_over_env() -> None:
    settings = load_config(
        "standalone",
        environ={},
        overrides={"submit": {"conf": {"spark.executor.memory": "700m", "spark.x": "submit"}}},
    )
    conf = effective_conf(settings, target="standalone", conf_overrides={"spark.x": "cli"})
    assert conf["spark.executor.memory"] == "700m"  # submit.conf beats the allocation's 640m
    assert conf["spark.x"] == "cli"
    assert conf["spark.sql.shuffle.partitions"] == "4"  # from the env's spark.conf


def test_yarn_cluster_mode_uses_archive_python_for_driver() -> None:
    settings = load_config("yarn", environ={})
    cmd = build_submit_command(settings, target="yarn", artifacts=ARTIFACTS, spark_submit="s")
    conf = _conf_pairs(cmd.argv)
    assert cmd.argv[1:5] == ["--master", "yarn", "--deploy-mode", "cluster"]
    assert conf["spark.pyspark.driver.python"] == "./environment/bin/python"
    assert conf["spark.yarn.am.nodeLabelExpression"] == "ON_DEMAND"
    assert "--py-files" not in cmd.argv


def test_k8s_native_submit() -> None:
    settings = load_config("kubernetes", environ={"LAKEHOUSE_DATA_BUCKET": "data"})
    cmd = build_submit_command(
        settings,
        target="k8s",
        artifacts=ARTIFACTS,
        deploy_mode="cluster",
        spark_submit="s",
        artifact_base_uri="s3a://art/lakehouse/0.1.0",
    )
    conf = _conf_pairs(cmd.argv)
    assert cmd.argv[2] == "k8s://https://kubernetes.default.svc"
    assert conf["spark.kubernetes.namespace"] == "spark-jobs"
    assert (
        conf["spark.archives"]
        == "s3a://art/lakehouse/0.1.0/lakehouse-env-0.1.0-py3.11.tar.gz#environment"
    )
    assert conf["spark.kubernetes.executor.node.selector.lakehouse/capacity"] == "spot"
    assert cmd.argv[-1] == "s3a://art/lakehouse/0.1.0/lakehouse_entry.py"


def test_wrong_master_and_standalone_cluster_mode_are_refused() -> None:
    settings = load_config("standalone", environ={})
    with pytest.raises(SubmitError) as err:
        build_submit_command(settings, target="standalone", artifacts=ARTIFACTS, master="yarn")
    assert str(err.value) == (
        "target 'standalone' needs a master starting with 'spark://'; found 'yarn' "
        "(set submit.master in conf/env/standalone.yaml or pass --master)"
    )
    with pytest.raises(SubmitError, match="does not support cluster deploy mode for Python"):
        build_submit_command(
            settings, target="standalone", artifacts=ARTIFACTS, deploy_mode="cluster"
        )
    with pytest.raises(SubmitError, match="unknown spark-submit target 'mesos'"):
        build_submit_command(settings, target="mesos", artifacts=ARTIFACTS)


def test_redaction_hides_secret_keys_and_url_credentials() -> None:
    argv = [
        "spark-submit",
        "--conf",
        "spark.hadoop.fs.s3a.secret.key=AKIASECRET",
        "--conf",
        "spark.hadoop.fs.s3a.access.key=AKIAID",
        "--conf",
        "spark.app.token=t0k",
        "--conf",
        "spark.jars=https://user:pw@repo.example/x.jar",
        "https://u:p@h/app.py",
        "--conf",
        "spark.executor.memory=1g",
        "--password=hunter2",
    ]
    assert redact_argv(argv) == [
        "spark-submit",
        "--conf",
        "spark.hadoop.fs.s3a.secret.key=*********(redacted)",
        "--conf",
        "spark.hadoop.fs.s3a.access.key=*********(redacted)",
        "--conf",
        "spark.app.token=*********(redacted)",
        "--conf",
        "spark.jars=https://*********(redacted)@repo.example/x.jar",
        "https://*********(redacted)@h/app.py",
        "--conf",
        "spark.executor.memory=1g",
        "--password=*********(redacted)",
    ]


def test_deploy_holds_no_command_line(repo_root: Path) -> None:
    """argparse lives in lakehouse.cli only; lakehouse.deploy is library code."""
    for path in sorted((repo_root / "lib" / "lakehouse" / "deploy").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {"argparse", "lakehouse.cli"} & imported, path.name


def test_invalid_submit_section_names_file_and_key(tmp_path: Path, repo_root: Path) -> None:
    conf_dir = tmp_path / "conf"
    subprocess.run(["cp", "-r", str(repo_root / "conf"), str(conf_dir)], check=True)
    (conf_dir / "env" / "bad.yaml").write_text(
        "submit:\n  deploy_mode: client\n  deploy_mod: client\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as err:
        load_config("bad", conf_dir=conf_dir, environ={})
    assert str(err.value) == (
        "invalid configuration:\n"
        f"  {conf_dir / 'env' / 'bad.yaml'}: submit.deploy_mod: "
        "unknown key 'deploy_mod' under submit"
    )


def test_spark_submit_sh_dry_run_prints_command_and_conf(tmp_path: Path, repo_root: Path) -> None:
    env = {
        **os.environ,
        "LAKEHOUSE_PYTHON": sys.executable,
        "LAKEHOUSE_SPARK_MASTER": "spark://127.0.0.1:7999",
    }
    result = subprocess.run(
        [
            str(repo_root / "spark-submit.sh"),
            "standalone",
            "--dry-run",
            "--dist",
            str(tmp_path),
            "--conf",
            "spark.hadoop.fs.s3a.secret.key=SHH",
            "--",
            "run",
            "all",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("+ ") and "--master spark://127.0.0.1:7999" in first
    assert "SHH" not in result.stderr + result.stdout
    printed = json.loads(result.stdout)
    assert printed["argv"][-2:] == ["run", "all"]
    assert printed["conf"]["spark.hadoop.fs.s3a.secret.key"] == "*********(redacted)"
    assert printed["conf"]["spark.dynamicAllocation.enabled"] == "true"


def test_spark_submit_sh_rejects_unknown_target(repo_root: Path) -> None:
    result = subprocess.run(
        [str(repo_root / "spark-submit.sh"), "mesos"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: unknown target 'mesos'; allowed: local, standalone, yarn, k8s, emr, "
        "emr-serverless, emr-eks (and emr-serverless-cancel, emr-eks-cancel)\n"
    )


def test_tf_env_exports_outputs_and_skips_sensitive(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    outputs = {
        "cluster_id": {"value": "j-ABC", "sensitive": False},
        "log_uri": {"value": "s3://logs/emr/", "sensitive": False},
        "db_password": {"value": "hunter2", "sensitive": True},
        "driver_node_selector": {"value": "lakehouse/capacity=on-demand", "sensitive": False},
        "tags": {"value": {"a": "b c"}, "sensitive": False},
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(outputs)))
    assert main(["tf-env"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "export TF_cluster_id=j-ABC",
        "export TF_driver_node_selector=lakehouse/capacity=on-demand",
        "export TF_log_uri=s3://logs/emr/",
        'export TF_tags=\'{"a":"b c"}\'',
    ]


def test_plan_prints_allocation(repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--env", "standalone", "--conf-dir", str(repo_root / "conf")]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert (plan["min_executors"], plan["initial_executors"], plan["max_executors"]) == (1, 2, 2)
    assert plan["conf"]["spark.executor.memory"] == "640m"


def test_local_target_binds_the_driver_to_loopback() -> None:
    settings = load_config("local")
    local = build_submit_command(settings, target="local", artifacts=ARTIFACTS, spark_submit="s")
    assert local.conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert local.conf["spark.driver.host"] == "127.0.0.1"
    assert "spark.driver.bindAddress=127.0.0.1" in local.argv
    yarn = build_submit_command(settings, target="yarn", artifacts=ARTIFACTS, spark_submit="s")
    assert "spark.driver.bindAddress" not in yarn.conf


def test_a_submission_on_an_s3a_data_root_resolves_hadoop_aws_unless_provided() -> None:
    from lakehouse.spark.session import delta_maven_coordinate, hadoop_aws_coordinate

    environ = {"LAKEHOUSE_DATA_ROOT": "s3a://lake/x", "LAKEHOUSE_S3_ENDPOINT": "http://s3:9000"}
    settings = load_config("standalone", environ=environ)
    conf = effective_conf(settings, target="standalone")
    assert conf["spark.jars.packages"] == f"{delta_maven_coordinate()},{hadoop_aws_coordinate()}"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://s3:9000"
    # EMR and the Kubernetes image put Delta and hadoop-aws on the classpath themselves
    provided = effective_conf(settings, target="standalone", provides_jars=True)
    assert "spark.jars.packages" not in provided
    assert provided["spark.hadoop.fs.s3a.endpoint"] == "http://s3:9000"
