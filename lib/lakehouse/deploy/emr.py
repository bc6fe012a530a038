"""Amazon EMR on EC2: the packaged job as a step on a running cluster (boto3).

1. :func:`stage_artifacts` checks the build's manifest against the release label
   (:func:`lakehouse.deploy.artifacts.check_target`: Spark 4 artifacts are refused on
   ``emr-7.x``), then :func:`upload_artifacts` puts the build (wheel, env archive, entry
   file, configs, manifest) under ``submit.emr.artifacts_uri``/<version> (SSE-KMS when
   ``kms_key_arn`` is set).
2. :func:`add_spark_step` adds a step ``command-runner.jar spark-submit --deploy-mode cluster
   ...`` (:func:`emr_spark_submit_args`) whose Spark configuration is
   :func:`lakehouse.deploy.spark_submit.effective_conf` (spot-aware allocation, the env
   archive, Delta provided by EMR's ``delta-defaults`` classification).
3. :func:`wait_for_step` waits with boto3's ``step_complete`` waiter (poll delay and overall
   timeout configurable), printing each state change; on failure it reads the step's
   ``stderr.gz`` from ``<LogUri><cluster-id>/steps/<step-id>/stderr.gz`` and raises
   :class:`StepFailedError` carrying it; ``lakehouse submit emr`` prints it and exits 1.

EMR Serverless shares the ``submit.emr`` settings, the upload and the errors defined here;
its job runs are in :mod:`lakehouse.deploy.emr_serverless`.
"""

from __future__ import annotations

import gzip
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError, WaiterError

from lakehouse.config import Settings
from lakehouse.config.models import EmrSubmitSettings
from lakehouse.deploy.artifacts import ArtifactPaths, Artifacts, check_target
from lakehouse.deploy.spark_submit import effective_conf
from lakehouse.errors import LakehouseError

__all__ = [
    "AwsClients",
    "EmrError",
    "StepFailedError",
    "StepTimeoutError",
    "add_spark_step",
    "aws_clients",
    "emr_settings",
    "emr_spark_submit_args",
    "fetch_step_stderr",
    "require_setting",
    "split_s3_uri",
    "stage_artifacts",
    "upload_artifacts",
    "wait_for_step",
]

_FAILED_STEP_STATES = ("FAILED", "CANCELLED", "INTERRUPTED")


class EmrError(LakehouseError, RuntimeError):
    """An EMR / EMR Serverless operation failed."""


class StepFailedError(EmrError):
    """The step ended in FAILED / CANCELLED / INTERRUPTED; ``stderr`` holds its log if found."""

    def __init__(self, message: str, *, state: str, stderr: str | None) -> None:
        super().__init__(message)
        self.state = state
        self.stderr = stderr


class StepTimeoutError(EmrError, TimeoutError):
    """The step did not finish within the timeout."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``; accepts s3n:// and s3a:// too.

    Examples
    --------
    >>> split_s3_uri("s3n://logs/emr/")
    ('logs', 'emr/')
    """
    for scheme in ("s3://", "s3n://", "s3a://"):
        if uri.startswith(scheme):
            bucket, _, key = uri[len(scheme) :].partition("/")
            if bucket:
                return bucket, key
    raise EmrError(f"not an S3 URI: {uri!r}; required: s3://bucket/prefix")


def emr_settings(settings: Settings) -> EmrSubmitSettings:
    """The environment's ``submit.emr`` section; :class:`EmrError` without a ``submit:``."""
    if settings.submit is None:
        raise EmrError(f"conf/env/{settings.env}.yaml: no submit section")
    return settings.submit.emr


def require_setting(value: str, key: str, settings: Settings) -> str:
    """``value`` of ``submit.emr.<key>``; :class:`EmrError` naming file and key if empty."""
    if not value:
        raise EmrError(
            f"conf/env/{settings.env}.yaml: submit.emr.{key} is empty; set it (Terraform output "
            f'via TF_* variables: eval "$(terraform output -json | lakehouse submit tf-env)")'
        )
    return value


def upload_artifacts(
    s3: Any,
    files: Sequence[str | Path],
    base_uri: str,
    *,
    kms_key_arn: str = "",
    out: TextIO | None = None,
) -> dict[str, str]:
    """Upload ``files`` under ``base_uri``; returns ``{file name: s3 URI}``."""
    out = out or sys.stdout
    bucket, prefix = split_s3_uri(base_uri)
    prefix = prefix.rstrip("/")
    extra: dict[str, str] = {}
    if kms_key_arn:
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn}
    uris: dict[str, str] = {}
    for file in files:
        path = Path(file)
        key = f"{prefix}/{path.name}" if prefix else path.name
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra or None)
        uris[path.name] = f"s3://{bucket}/{key}"
        print(f"uploaded {path} -> {uris[path.name]}", file=out)
    return uris


def emr_spark_submit_args(
    settings: Settings,
    *,
    entry_uri: str,
    archive_uri: str | None,
    conf_archive_uri: str | None = None,
    job_args: Sequence[str] = (),
    conf_overrides: Mapping[str, str] | None = None,
) -> list[str]:
    """``spark-submit`` argv run by ``command-runner.jar`` on the cluster (YARN cluster mode)."""
    conf = effective_conf(
        settings,
        target="emr",
        artifacts=ArtifactPaths(
            wheel="", entry=entry_uri, env_archive=archive_uri, conf_archive=conf_archive_uri
        ),
        deploy_mode="cluster",
        conf_overrides=conf_overrides,
        provides_jars=True,
    )
    args = ["spark-submit", "--deploy-mode", "cluster", "--name", conf.pop("spark.app.name")]
    for key in sorted(conf):
        args += ["--conf", f"{key}={conf[key]}"]
    return [*args, entry_uri, *job_args]


def add_spark_step(
    emr: Any,
    *,
    cluster_id: str,
    name: str,
    spark_submit_args: Sequence[str],
    action_on_failure: str = "CONTINUE",
) -> str:
    """Add one ``command-runner.jar`` step; returns the step id."""
    response = emr.add_job_flow_steps(
        JobFlowId=cluster_id,
        Steps=[
            {
                "Name": name,
                "ActionOnFailure": action_on_failure,
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": list(spark_submit_args)},
            }
        ],
    )
    step_id: str = response["StepIds"][0]
    return step_id


def fetch_step_stderr(s3: Any, *, log_uri: str, cluster_id: str, step_id: str) -> str | None:
    """The step's ``stderr.gz`` from the cluster's LogUri, decompressed; None if absent."""
    bucket, prefix = split_s3_uri(log_uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    key = f"{prefix}{cluster_id}/steps/{step_id}/stderr.gz"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            return None
        raise
    try:
        return gzip.decompress(body).decode("utf-8", errors="replace")
    except OSError:
        return bytes(body).decode("utf-8", errors="replace")


def _step_progress(step_id: str, cluster_id: str, out: TextIO) -> Callable[..., None]:
    """An ``after-call.emr.DescribeStep`` handler printing each change of the step's state."""
    last: dict[str, str] = {}
    started = time.monotonic()

    def progress(parsed: Mapping[str, Any] | None = None, **_: Any) -> None:
        if not parsed or "Step" not in parsed:
            return
        state = parsed["Step"]["Status"].get("State", "?")
        if last.get("state") != state:
            last["state"] = state
            print(
                f"[{time.monotonic() - started:6.0f}s] step {step_id} on {cluster_id}: {state}",
                file=out,
                flush=True,
            )

    return progress


def _wait_for_stderr(
    s3: Any,
    *,
    log_uri: str,
    cluster_id: str,
    step_id: str,
    wait_s: int,
    poll_s: int,
    sleep: Callable[[float], None],
) -> str | None:
    """The failed step's stderr; EMR pushes step logs to S3 a few minutes after the step ends."""
    deadline = time.monotonic() + wait_s
    while True:
        stderr = fetch_step_stderr(s3, log_uri=log_uri, cluster_id=cluster_id, step_id=step_id)
        if stderr is not None or time.monotonic() >= deadline:
            return stderr
        sleep(min(poll_s, 15))


def wait_for_step(
    emr: Any,
    s3: Any,
    *,
    cluster_id: str,
    step_id: str,
    timeout_s: int,
    poll_s: int,
    log_uri: str | None = None,
    log_wait_s: int = 0,
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Wait for a step with the ``step_complete`` waiter; return ``COMPLETED``.

    Progress: every poll the waiter makes is reported when the state changes.

    Raises
    ------
    StepFailedError
        The step failed; its stderr (from ``log_uri`` or the cluster's LogUri) is attached.
    StepTimeoutError
        Still not finished after ``timeout_s``.
    """
    progress = _step_progress(step_id, cluster_id, out or sys.stdout)
    handler_id = emr.meta.events.register("after-call.emr.DescribeStep", progress)
    try:
        waiter = emr.get_waiter("step_complete")
        waiter.wait(
            ClusterId=cluster_id,
            StepId=step_id,
            WaiterConfig={"Delay": poll_s, "MaxAttempts": max(1, math.ceil(timeout_s / poll_s))},
        )
        return "COMPLETED"
    except WaiterError as exc:
        # last_response is the raw DescribeStep reply (typed loosely by the stubs)
        last_response: dict[str, Any] = dict(exc.last_response or {})
        status: dict[str, Any] = last_response.get("Step", {}).get("Status", {})
        state = status.get("State", "")
        if state not in _FAILED_STEP_STATES:
            raise StepTimeoutError(
                f"step {step_id} on {cluster_id} not finished after {timeout_s}s "
                f"(last state {state or 'unknown'}); it keeps running: cancel it with "
                f"aws emr cancel-steps --cluster-id {cluster_id} --step-ids {step_id}"
            ) from exc
        details = status.get("FailureDetails", {}) or {}
        reason = details.get("Reason") or details.get("Message") or "no reason given"
        if not log_uri:
            log_uri = emr.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri") or ""
        stderr = None
        if log_uri:
            stderr = _wait_for_stderr(
                s3,
                log_uri=log_uri,
                cluster_id=cluster_id,
                step_id=step_id,
                wait_s=log_wait_s,
                poll_s=poll_s,
                sleep=sleep,
            )
        raise StepFailedError(
            f"step {step_id} on {cluster_id} ended {state}: {reason}",
            state=state,
            stderr=stderr,
        ) from exc
    finally:
        emr.meta.events.unregister("after-call.emr.DescribeStep", handler_id)


# --------------------------------------------------------------------------- clients, upload


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients the EMR targets use, all in ``submit.emr.region``."""

    emr: Any
    s3: Any
    emr_serverless: Any
    emr_containers: Any


def aws_clients(settings: Settings) -> AwsClients:
    """boto3 clients for ``submit.emr.region`` (and ``endpoint_url``, e.g. a moto server)."""
    # boto3 takes ~0.3 s to import; only the EMR commands need it, not every spark-submit.
    import boto3

    cfg = emr_settings(settings)
    endpoint = cfg.endpoint_url or None
    session = boto3.session.Session(region_name=cfg.region)
    return AwsClients(
        emr=session.client("emr", endpoint_url=endpoint),
        s3=session.client("s3", endpoint_url=endpoint),
        emr_serverless=session.client("emr-serverless", endpoint_url=endpoint),
        emr_containers=session.client("emr-containers", endpoint_url=endpoint),
    )


def stage_artifacts(
    s3: Any, settings: Settings, artifacts: Artifacts, *, out: TextIO | None = None
) -> ArtifactPaths:
    """Check the build against ``submit.emr.release_label``, upload it; returns the S3 URIs.

    The files go under ``submit.emr.artifacts_uri``/<version>/. Nothing is uploaded when the
    build targets another Spark than the release runs
    (:class:`lakehouse.deploy.artifacts.TargetMismatchError`).
    """
    cfg = emr_settings(settings)
    check_target(artifacts.manifest, release_label=cfg.release_label)
    base = require_setting(cfg.artifacts_uri, "artifacts_uri", settings)
    if base.startswith("s3:///"):
        raise EmrError(f"submit.emr.artifacts_uri has no bucket: {base!r} (TF_artifacts_bucket?)")
    uris = upload_artifacts(
        s3,
        artifacts.files(),
        f"{base.rstrip('/')}/{artifacts.version}",
        kms_key_arn=cfg.kms_key_arn,
        out=out,
    )
    local = artifacts.paths()

    def uploaded(path: str | None) -> str | None:
        return None if path is None else uris[Path(path).name]

    return ArtifactPaths(
        wheel=uris[artifacts.wheel.name],
        entry=uris[artifacts.entry.name],
        env_archive=uploaded(local.env_archive),
        conf_archive=uploaded(local.conf_archive),
        manifest=artifacts.manifest,
    )
