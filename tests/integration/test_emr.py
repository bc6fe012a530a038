"""EMR steps, EMR Serverless and EMR on EKS through the real boto3 client against moto on 127.0.0.1.

moto in server mode keeps EMR steps RUNNING forever, so completion and failure are driven
through moto's in-process backend (the threaded server shares this process) or, for the
failure details, botocore's Stubber on the EMR client; S3 and the step add/describe always
go over HTTP.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pyspark
import pytest
from botocore.stub import Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends
from moto.emrcontainers.models import emrcontainers_backends

from lakehouse.cli.submit import main as submit_main
from lakehouse.config import load_config
from lakehouse.deploy import emr, emr_eks, emr_serverless
from lakehouse.deploy.artifacts import build_artifacts

#: The emr/kubernetes environments target Spark 4.1 (emr-spark-8.1.0, the 4.1.1 image): under
#: the pyspark 3.5 compat target the build is rightly refused for them (check_target).
NEEDS_SPARK4 = pytest.mark.skipif(
    int(pyspark.__version__.split(".")[0]) < 4,
    reason="environment targets Spark 4.1; artifacts built with pyspark 3.5 are refused",
)
REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint(aws_endpoint: str) -> str:
    return aws_endpoint


@pytest.fixture()
def clients(endpoint: str) -> dict[str, Any]:
    return {
        name: boto3.client(name, region_name=REGION, endpoint_url=endpoint)
        for name in ("s3", "emr", "emr-serverless", "emr-containers")
    }


@pytest.fixture()
def cluster_id(clients: dict[str, Any]) -> str:
    for bucket in ("artifacts", "logs"):
        clients["s3"].create_bucket(Bucket=bucket)
    response = clients["emr"].run_job_flow(
        Name="lakehouse-test",
        ReleaseLabel="emr-7.12.0",  # moto validates nothing about it; the step is what counts
        LogUri="s3n://logs/emr/",
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "SlaveInstanceType": "m5.xlarge",
            "InstanceCount": 2,
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )
    return str(response["JobFlowId"])


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build_artifacts(
        repo_root, out, envs=["emr"], env_archive=False, environ={"LAKEHOUSE_DATA_BUCKET": "data"}
    )
    # a stand-in env archive (the real one is tested in test_packaging), listed in the manifest
    (out / "lakehouse-env-0.1.0-py3.11.tar.gz").write_bytes(b"not really an archive")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["lakehouse-env-0.1.0-py3.11.tar.gz"] = {"sha256": "0", "bytes": 21}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _settings(**emr_overrides: object):  # type: ignore[no-untyped-def]
    return load_config(
        "emr",
        environ={"LAKEHOUSE_DATA_BUCKET": "data"},
        overrides={"submit": {"emr": emr_overrides}} if emr_overrides else None,
    )


def _set_step_state(cluster_id: str, step_id: str, state: str) -> None:
    backend = emr_backends[DEFAULT_ACCOUNT_ID][REGION]
    step = next(s for s in backend.clusters[cluster_id].steps if s.id == step_id)
    step.state = state


def test_upload_add_and_describe_step_over_http(
    clients: dict[str, Any], cluster_id: str, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [dist / "lakehouse_entry.py", dist / "lakehouse-env-0.1.0-py3.11.tar.gz"]
    uris = emr.upload_artifacts(clients["s3"], files, "s3://artifacts/lakehouse/0.1.0")
    assert uris == {
        "lakehouse_entry.py": "s3://artifacts/lakehouse/0.1.0/lakehouse_entry.py",
        "lakehouse-env-0.1.0-py3.11.tar.gz": "s3://artifacts/lakehouse/0.1.0/lakehouse-env-0.1.0-py3.11.tar.gz",
    }
    body = clients["s3"].get_object(Bucket="artifacts", Key="lakehouse/0.1.0/lakehouse_entry.py")
    assert body["Body"].read() == (dist / "lakehouse_entry.py").read_bytes()

    args = emr.emr_spark_submit_args(
        _settings(),
        entry_uri=uris["lakehouse_entry.py"],
        archive_uri=uris["lakehouse-env-0.1.0-py3.11.tar.gz"],
        job_args=["run", "all", "--env", "emr"],
    )
    step_id = emr.add_spark_step(
        clients["emr"], cluster_id=cluster_id, name="lakehouse", spark_submit_args=args
    )
    step = clients["emr"].describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    assert step["Config"]["Jar"] == "command-runner.jar"
    sent = step["Config"]["Args"]
    assert sent[:5] == ["spark-submit", "--deploy-mode", "cluster", "--name", "lakehouse"]
    assert sent[-5:] == [
        "s3://artifacts/lakehouse/0.1.0/lakehouse_entry.py",
        "run",
        "all",
        "--env",
        "emr",
    ]
    conf = dict(sent[i + 1].split("=", 1) for i, a in enumerate(sent) if a == "--conf")
    assert conf["spark.archives"] == (
        "s3://artifacts/lakehouse/0.1.0/lakehouse-env-0.1.0-py3.11.tar.gz#environment"
    )
    assert conf["spark.pyspark.python"] == "./environment/bin/python"
    assert conf["spark.pyspark.driver.python"] == "./environment/bin/python"
    assert conf["spark.yarn.am.nodeLabelExpression"] == "ON_DEMAND"
    assert "spark.jars.packages" not in conf  # EMR's delta-defaults classification provides Delta


def test_wait_for_step_success_prints_progress(
    clients: dict[str, Any], cluster_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    step_id = emr.add_spark_step(
        clients["emr"], cluster_id=cluster_id, name="ok", spark_submit_args=["spark-submit", "x.py"]
    )
    _set_step_state(cluster_id, step_id, "COMPLETED")
    state = emr.wait_for_step(
        clients["emr"],
        clients["s3"],
        cluster_id=cluster_id,
        step_id=step_id,
        timeout_s=10,
        poll_s=1,
    )
    assert state == "COMPLETED"
    assert f"step {step_id} on {cluster_id}: COMPLETED" in capsys.readouterr().out


def test_wait_for_step_failure_fetches_stderr_from_log_uri(
    clients: dict[str, Any], cluster_id: str
) -> None:
    step_id = emr.add_spark_step(
        clients["emr"],
        cluster_id=cluster_id,
        name="bad",
        spark_submit_args=["spark-submit", "x.py"],
    )
    log = "Traceback (most recent call last):\nValueError: boom\n"
    clients["s3"].put_object(
        Bucket="logs",
        Key=f"emr/{cluster_id}/steps/{step_id}/stderr.gz",
        Body=gzip.compress(log.encode()),
    )
    _set_step_state(cluster_id, step_id, "FAILED")
    with pytest.raises(emr.StepFailedError) as err:
        # LogUri is read from describe_cluster (s3n://logs/emr/) when not configured
        emr.wait_for_step(
            clients["emr"],
            clients["s3"],
            cluster_id=cluster_id,
            step_id=step_id,
            timeout_s=10,
            poll_s=1,
        )
    assert err.value.state == "FAILED"
    assert err.value.stderr == log
    assert str(err.value) == f"step {step_id} on {cluster_id} ended FAILED: no reason given"


def test_wait_for_step_failure_reason_via_stubber(clients: dict[str, Any]) -> None:
    client = boto3.client("emr", region_name=REGION)

    def status(state: str, **extra: Any) -> dict[str, Any]:
        return {"Step": {"Id": "s-1", "Name": "n", "Status": {"State": state, **extra}}}

    with Stubber(client) as stub:
        stub.add_response("describe_step", status("PENDING"))
        stub.add_response("describe_step", status("RUNNING"))
        stub.add_response(
            "describe_step",
            status(
                "FAILED",
                FailureDetails={
                    "Reason": "Unknown Error.",
                    "Message": "exit code 1",
                    "LogFile": "s3://logs/emr/j-1/steps/s-1/",
                },
            ),
        )
        out = io.StringIO()
        with pytest.raises(emr.StepFailedError) as err:
            emr.wait_for_step(
                client,
                clients["s3"],
                cluster_id="j-1",
                step_id="s-1",
                timeout_s=10,
                poll_s=1,
                log_uri="s3://logs/emr/",
                out=out,
            )
    assert str(err.value) == "step s-1 on j-1 ended FAILED: Unknown Error."
    assert err.value.stderr is None  # nothing at s3://logs/emr/j-1/steps/s-1/stderr.gz
    assert [line.split("] ")[1] for line in out.getvalue().splitlines()] == [
        "step s-1 on j-1: PENDING",
        "step s-1 on j-1: RUNNING",
        "step s-1 on j-1: FAILED",
    ]


def test_wait_for_step_times_out(clients: dict[str, Any], cluster_id: str) -> None:
    step_id = emr.add_spark_step(
        clients["emr"],
        cluster_id=cluster_id,
        name="slow",
        spark_submit_args=["spark-submit", "x.py"],
    )
    with pytest.raises(emr.StepTimeoutError) as err:
        emr.wait_for_step(
            clients["emr"],
            clients["s3"],
            cluster_id=cluster_id,
            step_id=step_id,
            timeout_s=2,
            poll_s=1,
        )
    assert str(err.value).startswith(f"step {step_id} on {cluster_id} not finished after 2s")


def _cli_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, cluster_id: str, **extra: str) -> None:
    env = {
        "LAKEHOUSE_DATA_BUCKET": "data",
        "LAKEHOUSE_AWS_ENDPOINT_URL": endpoint,
        "TF_cluster_id": cluster_id,
        "TF_artifacts_bucket": "artifacts",
        "TF_log_uri": "s3://logs/emr/",
        **extra,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@NEEDS_SPARK4
def test_cli_emr_uploads_adds_step_and_fails_on_timeout(
    clients: dict[str, Any],
    cluster_id: str,
    dist: Path,
    endpoint: str,
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _cli_env(monkeypatch, endpoint, cluster_id)
    status = submit_main(
        [
            "emr",
            "--env",
            "emr",
            "--conf-dir",
            str(repo_root / "conf"),
            "--dist",
            str(dist),
            "--timeout",
            "2",
            "--poll",
            "1",
            "--",
            "run",
            "all",
            "--env",
            "emr",
        ]
    )
    captured = capsys.readouterr()
    assert status == 1
    assert "+ command-runner.jar spark-submit --deploy-mode cluster" in captured.out
    assert "not finished after 2s" in captured.err
    keys = {o["Key"] for o in clients["s3"].list_objects_v2(Bucket="artifacts")["Contents"]}
    assert "lakehouse/artifacts/0.1.0/manifest.json" in keys
    steps = clients["emr"].list_steps(ClusterId=cluster_id)["Steps"]
    sent = steps[0]["Config"]["Args"]
    assert sent[-4:] == ["run", "all", "--env", "emr"]
    conf = dict(sent[i + 1].split("=", 1) for i, a in enumerate(sent) if a == "--conf")
    base = "s3://artifacts/lakehouse/artifacts/0.1.0"
    assert conf["spark.archives"] == (
        f"{base}/lakehouse-env-0.1.0-py3.11.tar.gz#environment,"
        f"{base}/lakehouse-conf-0.1.0.tar.gz#conf"
    )


@NEEDS_SPARK4
def test_cli_emr_refuses_spark4_artifacts_on_emr7(
    clients: dict[str, Any],
    cluster_id: str,
    dist: Path,
    endpoint: str,
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _cli_env(monkeypatch, endpoint, cluster_id, TF_release_label="emr-7.12.0")
    before = clients["s3"].list_objects_v2(Bucket="artifacts").get("KeyCount")
    status = submit_main(
        ["emr", "--env", "emr", "--conf-dir", str(repo_root / "conf"), "--dist", str(dist)]
    )
    assert status == 2
    assert capsys.readouterr().err.startswith(
        "error: artifacts were built for Spark 4.1.1 (Delta 4.2.0) but release emr-7.12.0 runs "
        "Spark 3.5"
    )
    assert clients["s3"].list_objects_v2(Bucket="artifacts").get("KeyCount") == before
    assert clients["emr"].list_steps(ClusterId=cluster_id)["Steps"] == []


def test_emr_serverless_start_wait_and_cancel(clients: dict[str, Any]) -> None:
    client = clients["emr-serverless"]
    # moto's EMR Serverless rejects emr-spark-8.* labels; the label plays no part here.
    app_id = client.create_application(name="lakehouse", releaseLabel="emr-7.12.0", type="SPARK")[
        "applicationId"
    ]
    settings = _settings(
        serverless_application_id=app_id,
        serverless_execution_role_arn="arn:aws:iam::123456789012:role/job",
        log_uri="s3://logs/serverless/",
    )
    run_id = emr_serverless.start_serverless_job(
        client,
        settings,
        entry_uri="s3://artifacts/e.py",
        archive_uri="s3://artifacts/env.tar.gz",
        job_args=["run", "all"],
    )
    run = client.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]
    driver = run["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"] == "s3://artifacts/e.py"
    assert driver["entryPointArguments"] == ["run", "all"]
    params = driver["sparkSubmitParameters"]
    assert "--conf spark.archives=s3://artifacts/env.tar.gz#environment" in params
    assert "--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python" in params
    assert "--conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python" in params
    assert "nodeLabelExpression" not in params
    out = io.StringIO()
    assert (
        emr_serverless.wait_for_job_run(
            client, application_id=app_id, job_run_id=run_id, timeout_s=5, poll_s=1, out=out
        )
        == "SUCCESS"
    )

    second = emr_serverless.start_serverless_job(
        client, settings, entry_uri="s3://artifacts/e.py", archive_uri=None
    )
    emr_serverless.cancel_job_run(client, application_id=app_id, job_run_id=second)
    with pytest.raises(emr_serverless.JobRunFailedError, match=f"job run {second} ended CANCELLED"):
        emr_serverless.wait_for_job_run(
            client, application_id=app_id, job_run_id=second, timeout_s=5, poll_s=1, out=out
        )


def _dry_run_conf(
    target: str, repo_root: Path, dist: Path, capsys: pytest.CaptureFixture[str], partitions: int
) -> dict[str, str]:
    """``lakehouse submit <target> --dry-run``: the ``--conf`` pairs it prints."""
    argv = [target, "--env", "emr", "--conf-dir", str(repo_root / "conf"), "--dist", str(dist)]
    argv += ["--dry-run", "--conf", f"spark.sql.shuffle.partitions={partitions}"]
    assert submit_main(argv) == 0
    params = capsys.readouterr().out.split()
    return dict(params[i + 1].split("=", 1) for i, a in enumerate(params) if a == "--conf")


def test_missing_serverless_application_is_a_clear_error() -> None:
    with pytest.raises(emr.EmrError) as err:
        emr_serverless.start_serverless_job(
            object(), _settings(), entry_uri="s3://a/e.py", archive_uri=None
        )
    assert str(err.value).startswith(
        "conf/env/emr.yaml: submit.emr.serverless_application_id is empty; set it"
    )


@NEEDS_SPARK4
def test_cli_emr_serverless_dry_run_prints_the_parameters_it_would_send(
    clients: dict[str, Any],
    cluster_id: str,
    dist: Path,
    endpoint: str,
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _cli_env(monkeypatch, endpoint, cluster_id)
    conf = _dry_run_conf("emr-serverless", repo_root, dist, capsys, partitions=7)
    base = "s3://artifacts/lakehouse/artifacts/0.1.0"
    assert conf["spark.archives"] == (
        f"{base}/lakehouse-env-0.1.0-py3.11.tar.gz#environment,"
        f"{base}/lakehouse-conf-0.1.0.tar.gz#conf"
    )
    assert conf["spark.sql.shuffle.partitions"] == "7"  # --conf reaches the dry run too
    assert conf["spark.executorEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    # the build was uploaded (the dry run shows the URIs a run would use); no run started
    keys = {o["Key"] for o in clients["s3"].list_objects_v2(Bucket="artifacts")["Contents"]}
    assert "lakehouse/artifacts/0.1.0/lakehouse-conf-0.1.0.tar.gz" in keys


def _virtual_cluster(client: Any) -> str:
    provider = {"id": "lakehouse-eks", "type": "EKS", "info": {"eksInfo": {"namespace": "spark"}}}
    return str(client.create_virtual_cluster(name="lakehouse", containerProvider=provider)["id"])


def _set_eks_run(job_run_id: str, state: str, reason: str | None = None) -> None:
    run = emrcontainers_backends[DEFAULT_ACCOUNT_ID][REGION].job_runs[job_run_id]
    run.state = state
    run.failure_reason = reason


def test_emr_eks_start_wait_fail_time_out_and_cancel(
    clients: dict[str, Any],
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = clients["emr-containers"]
    vc = _virtual_cluster(client)
    # moto knows emr-<x>.<y>.0 labels only; the label plays no part here
    settings = _settings(
        eks_virtual_cluster_id=vc,
        eks_execution_role_arn="arn:aws:iam::123456789012:role/eks-job",
        release_label="emr-7.12.0",
        log_uri="s3://logs/eks/",
    )
    run_id = emr_eks.start_eks_job(
        client,
        settings,
        entry_uri="s3://artifacts/e.py",
        archive_uri="s3://artifacts/env.tar.gz",
        job_args=["run", "all"],
    )
    run = client.describe_job_run(id=run_id, virtualClusterId=vc)["jobRun"]
    assert run["releaseLabel"] == "emr-7.12.0-latest"
    assert run["executionRoleArn"] == "arn:aws:iam::123456789012:role/eks-job"
    driver = run["jobDriver"]["sparkSubmitJobDriver"]
    assert driver["entryPoint"] == "s3://artifacts/e.py"
    assert driver["entryPointArguments"] == ["run", "all"]
    params = driver["sparkSubmitParameters"]
    assert "--conf spark.archives=s3://artifacts/env.tar.gz#environment" in params
    assert "--conf spark.kubernetes.driverEnv.PYSPARK_PYTHON=./environment/bin/python" in params
    assert "--conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python" in params
    monitoring = run["configurationOverrides"]["monitoringConfiguration"]
    assert monitoring["s3MonitoringConfiguration"]["logUri"] == "s3://logs/eks/"

    _set_eks_run(run_id, "COMPLETED")
    out = io.StringIO()
    wait = {"virtual_cluster_id": vc, "timeout_s": 5, "poll_s": 1, "out": out}
    assert emr_eks.wait_for_eks_job_run(client, job_run_id=run_id, **wait) == "COMPLETED"
    assert f"EMR on EKS job run {run_id}: COMPLETED" in out.getvalue()

    failed = emr_eks.start_eks_job(client, settings, entry_uri="s3://a/e.py", archive_uri=None)
    _set_eks_run(failed, "FAILED", "USER_ERROR")
    with pytest.raises(emr_serverless.JobRunFailedError) as err:
        emr_eks.wait_for_eks_job_run(client, job_run_id=failed, log_uri="s3://logs/eks/", **wait)
    assert str(err.value) == (
        f"EMR on EKS job run {failed} ended FAILED: USER_ERROR; driver and executor logs "
        f"under s3://logs/eks/{vc}/jobs/{failed}/containers/"
    )

    # a run that never ends: a timeout naming the cancel command, then that command
    stuck = emr_eks.start_eks_job(client, settings, entry_uri="s3://a/e.py", archive_uri=None)
    with pytest.raises(emr.StepTimeoutError, match=f"emr-eks-cancel {stuck}"):
        emr_eks.wait_for_eks_job_run(client, job_run_id=stuck, **{**wait, "timeout_s": 1})
    monkeypatch.setenv("TF_eks_virtual_cluster_id", vc)
    monkeypatch.setenv("LAKEHOUSE_DATA_BUCKET", "data")
    monkeypatch.setenv("LAKEHOUSE_AWS_ENDPOINT_URL", client.meta.endpoint_url)
    argv = ["emr-eks-cancel", stuck, "--env", "emr", "--conf-dir", str(repo_root / "conf")]
    assert submit_main(argv) == 0
    assert capsys.readouterr().out.endswith(f"cancelled EMR on EKS job run {stuck}\n")
    with pytest.raises(emr_serverless.JobRunFailedError, match=f"{stuck} ended CANCELLED"):
        emr_eks.wait_for_eks_job_run(client, job_run_id=stuck, **wait)


def test_missing_eks_virtual_cluster_is_a_clear_error() -> None:
    with pytest.raises(emr.EmrError) as err:
        emr_eks.start_eks_job(object(), _settings(), entry_uri="s3://a/e.py", archive_uri=None)
    assert str(err.value).startswith(
        "conf/env/emr.yaml: submit.emr.eks_virtual_cluster_id is empty; set it"
    )


@NEEDS_SPARK4
def test_cli_emr_eks_dry_run_prints_the_parameters_it_would_send(
    clients: dict[str, Any],
    cluster_id: str,
    dist: Path,
    endpoint: str,
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _cli_env(monkeypatch, endpoint, cluster_id)
    conf = _dry_run_conf("emr-eks", repo_root, dist, capsys, partitions=9)
    assert conf["spark.sql.shuffle.partitions"] == "9"
    assert conf["spark.kubernetes.driverEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert conf["spark.archives"].endswith("lakehouse-conf-0.1.0.tar.gz#conf")
