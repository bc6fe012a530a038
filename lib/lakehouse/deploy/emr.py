"""Amazon EMR steps and EMR Serverless job runs for the packaged job (boto3).

EMR on EC2 (a running cluster):

1. :func:`upload_artifacts` puts the build (wheel, env archive, entry file, configs,
   manifest) under ``submit.emr.artifacts_uri`` (SSE-KMS when ``kms_key_arn`` is set).
2. :func:`add_spark_step` adds a step ``command-runner.jar spark-submit --deploy-mode cluster
   ...`` whose Spark configuration is :func:`lakehouse.deploy.spark_submit.effective_conf` (spot-aware
   allocation, the env archive, Delta provided by EMR's ``delta-defaults`` classification).
3. :func:`wait_for_step` waits with boto3's ``step_complete`` waiter (poll delay and overall
   timeout configurable), printing each state change; on failure it reads the step's
   ``stderr.gz`` from ``<LogUri><cluster-id>/steps/<step-id>/stderr.gz`` and raises
   :class:`StepFailedError` carrying it; ``lakehouse submit emr`` prints it and exits 1.

EMR Serverless: :func:`start_serverless_job` (``sparkSubmit`` job driver with the packed
environment as ``spark.archives=...#environment``), :func:`wait_for_job_run`,
:func:`cancel_job_run`.

Before any upload the build's manifest is checked against the release label
(:func:`lakehouse.deploy.artifacts.check_target`): Spark 4 artifacts are refused on ``emr-7.x``.
"""

from __future__ import annotations

import argparse
import gzip
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from lakehouse.config import Settings

__all__ = [
    "EmrError",
    "JobRunFailedError",
    "StepFailedError",
    "StepTimeoutError",
    "add_spark_step",
    "cancel_job_run",
    "emr_spark_submit_args",
    "fetch_step_stderr",
    "register_cli",
    "split_s3_uri",
    "start_serverless_job",
    "upload_artifacts",
    "wait_for_job_run",
    "wait_for_step",
]

_FAILED_STEP_STATES = ("FAILED", "CANCELLED", "INTERRUPTED")
_FINAL_JOB_RUN_STATES = ("SUCCESS", "FAILED", "CANCELLED")


class EmrError(RuntimeError):
    """An EMR / EMR Serverless operation failed."""


class StepFailedError(EmrError):
    """The step ended in FAILED / CANCELLED / INTERRUPTED; ``stderr`` holds its log if found."""

    def __init__(self, message: str, *, state: str, stderr: str | None) -> None:
        super().__init__(message)
        self.state = state
        self.stderr = stderr


class StepTimeoutError(EmrError, TimeoutError):
    """The step did not finish within the timeout."""


class JobRunFailedError(EmrError):
    """The EMR Serverless job run ended in FAILED or CANCELLED."""


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


def _require(value: str, key: str, settings: Settings) -> str:
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
    from lakehouse.deploy.spark_submit import ArtifactPaths, effective_conf

    conf = effective_conf(
        settings,
        target="emr",
        artifacts=ArtifactPaths(
            wheel="", entry=entry_uri, env_archive=archive_uri, conf_archive=conf_archive_uri
        ),
        deploy_mode="cluster",
        conf_overrides=conf_overrides,
        provides_delta=True,
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
    from botocore.exceptions import ClientError

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
    from botocore.exceptions import WaiterError

    out = out or sys.stdout
    last: dict[str, str] = {}
    started = time.monotonic()

    def progress(parsed: Mapping[str, Any] | None = None, **_: Any) -> None:
        if not parsed or "Step" not in parsed:
            return
        status = parsed["Step"]["Status"]
        state = status.get("State", "?")
        if last.get("state") != state:
            last["state"] = state
            print(
                f"[{time.monotonic() - started:6.0f}s] step {step_id} on {cluster_id}: {state}",
                file=out,
                flush=True,
            )

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
            deadline = time.monotonic() + log_wait_s
            while True:  # EMR pushes step logs to S3 a few minutes after the step ends
                stderr = fetch_step_stderr(
                    s3, log_uri=log_uri, cluster_id=cluster_id, step_id=step_id
                )
                if stderr is not None or time.monotonic() >= deadline:
                    break
                sleep(min(poll_s, 15))
        raise StepFailedError(
            f"step {step_id} on {cluster_id} ended {state}: {reason}",
            state=state,
            stderr=stderr,
        ) from exc
    finally:
        emr.meta.events.unregister("after-call.emr.DescribeStep", handler_id)


# --------------------------------------------------------------------------- serverless


def serverless_submit_parameters(
    settings: Settings,
    *,
    archive_uri: str | None,
    conf_archive_uri: str | None = None,
    conf_overrides: Mapping[str, str] | None = None,
) -> str:
    """``sparkSubmitParameters`` for EMR Serverless: ``--conf`` pairs, packed environment."""
    from lakehouse.deploy.spark_submit import ArtifactPaths, effective_conf

    conf = effective_conf(
        settings,
        target="emr-serverless",
        artifacts=ArtifactPaths(
            wheel="", entry="", env_archive=archive_uri, conf_archive=conf_archive_uri
        ),
        deploy_mode="cluster",
        conf_overrides=conf_overrides,
        provides_delta=True,
    )
    conf.pop("spark.app.name", None)
    # EMR Serverless sizes its own workers; YARN labels do not apply there.
    conf.pop("spark.yarn.am.nodeLabelExpression", None)
    if archive_uri:
        python = "./environment/bin/python"
        conf["spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"] = python
        conf["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] = python
        conf["spark.executorEnv.PYSPARK_PYTHON"] = python
    spaced = sorted(k for k, v in conf.items() if any(c.isspace() for c in k + v))
    if spaced:
        # EMR Serverless splits sparkSubmitParameters on whitespace; quoting is not honoured.
        raise EmrError(f"EMR Serverless cannot pass Spark properties containing spaces: {spaced}")
    return " ".join(f"--conf {k}={v}" for k, v in sorted(conf.items()))


def start_serverless_job(
    client: Any,
    settings: Settings,
    *,
    entry_uri: str,
    archive_uri: str | None,
    conf_archive_uri: str | None = None,
    job_args: Sequence[str] = (),
    name: str = "lakehouse",
    conf_overrides: Mapping[str, str] | None = None,
) -> str:
    """Start an EMR Serverless job run; returns its id."""
    emr = settings.submit.emr if settings.submit else None
    if emr is None:
        raise EmrError(f"conf/env/{settings.env}.yaml: no submit section")
    request: dict[str, Any] = {
        "applicationId": _require(
            emr.serverless_application_id, "serverless_application_id", settings
        ),
        "executionRoleArn": _require(
            emr.serverless_execution_role_arn, "serverless_execution_role_arn", settings
        ),
        "name": name,
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": entry_uri,
                "entryPointArguments": list(job_args),
                "sparkSubmitParameters": serverless_submit_parameters(
                    settings,
                    archive_uri=archive_uri,
                    conf_archive_uri=conf_archive_uri,
                    conf_overrides=conf_overrides,
                ),
            }
        },
    }
    if emr.log_uri:
        s3_monitoring: dict[str, str] = {"logUri": emr.log_uri}
        if emr.kms_key_arn:
            s3_monitoring["encryptionKeyArn"] = emr.kms_key_arn
        request["configurationOverrides"] = {
            "monitoringConfiguration": {"s3MonitoringConfiguration": s3_monitoring}
        }
    response = client.start_job_run(**request)
    job_run_id: str = response["jobRunId"]
    return job_run_id


def wait_for_job_run(
    client: Any,
    *,
    application_id: str,
    job_run_id: str,
    timeout_s: int,
    poll_s: int,
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll ``get_job_run`` until SUCCESS; raise on FAILED/CANCELLED or timeout."""
    out = out or sys.stdout
    started = time.monotonic()
    last = ""
    while True:
        run = client.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"]
        state = run["state"]
        if state != last:
            print(
                f"[{time.monotonic() - started:6.0f}s] job run {job_run_id}: {state}",
                file=out,
                flush=True,
            )
            last = state
        if state == "SUCCESS":
            return state
        if state in _FINAL_JOB_RUN_STATES:
            raise JobRunFailedError(
                f"job run {job_run_id} ended {state}: {run.get('stateDetails') or 'no details'}"
            )
        if time.monotonic() - started >= timeout_s:
            raise StepTimeoutError(
                f"job run {job_run_id} not finished after {timeout_s}s (last state {state}); "
                f"cancel it with: lakehouse submit emr-serverless-cancel {job_run_id}"
            )
        sleep(poll_s)


def cancel_job_run(client: Any, *, application_id: str, job_run_id: str) -> None:
    """Cancel an EMR Serverless job run."""
    client.cancel_job_run(applicationId=application_id, jobRunId=job_run_id)


# --------------------------------------------------------------------------- CLI


def _clients(settings: Settings) -> tuple[Any, Any, Any]:
    import boto3

    emr = settings.submit.emr if settings.submit else None
    region = emr.region if emr else "us-east-1"
    endpoint = (emr.endpoint_url if emr else "") or None
    session = boto3.session.Session(region_name=region)
    return (
        session.client("emr", endpoint_url=endpoint),
        session.client("s3", endpoint_url=endpoint),
        session.client("emr-serverless", endpoint_url=endpoint),
    )


def _prepare(args: argparse.Namespace) -> tuple[Settings, dict[str, str], Any]:
    """Load config, check the build against the target, upload; returns URIs by name."""
    from lakehouse.deploy.artifacts import check_target, load_manifest
    from lakehouse.deploy.spark_submit import _dist

    settings = _load_emr(args)
    emr_settings = _emr_cfg(settings)
    artifacts = load_manifest(_dist(args, settings))
    check_target(artifacts.manifest, release_label=emr_settings.release_label)
    clients = _clients(settings)
    base = _require(emr_settings.artifacts_uri, "artifacts_uri", settings)
    if base.startswith("s3:///"):
        raise EmrError(f"submit.emr.artifacts_uri has no bucket: {base!r} (TF_artifacts_bucket?)")
    version = artifacts.manifest["project"]["version"]
    uris = upload_artifacts(
        clients[1],
        artifacts.files(),
        f"{base.rstrip('/')}/{version}",
        kms_key_arn=emr_settings.kms_key_arn,
    )
    return settings, uris, clients


def _load_emr(args: argparse.Namespace) -> Settings:
    from lakehouse.config import load_config

    settings = load_config(args.env or "emr", conf_dir=args.conf_dir)
    if settings.submit is None:
        raise EmrError(f"conf/env/{settings.env}.yaml: no submit section")
    return settings


def _emr_cfg(settings: Settings) -> Any:
    """The ``submit.emr`` section (``_load_emr`` has already checked ``submit`` is set)."""
    if settings.submit is None:
        raise EmrError(f"conf/env/{settings.env}.yaml: no submit section")
    return settings.submit.emr


def _archive_uri(uris: Mapping[str, str], kind: str = "env") -> str | None:
    return next((u for n, u in uris.items() if n.startswith(f"lakehouse-{kind}-")), None)


def _cmd_emr(args: argparse.Namespace) -> int:
    from lakehouse.deploy.spark_submit import _job_args, _parse_conf, redact_argv

    settings, uris, (emr, s3, _) = _prepare(args)
    cfg = _emr_cfg(settings)
    cluster_id = _require(cfg.cluster_id, "cluster_id", settings)
    step_args = emr_spark_submit_args(
        settings,
        entry_uri=uris["lakehouse_entry.py"],
        archive_uri=_archive_uri(uris),
        conf_archive_uri=_archive_uri(uris, "conf"),
        job_args=_job_args(args.job_args),
        conf_overrides=_parse_conf(args.conf),
    )
    print("+ command-runner.jar " + " ".join(redact_argv(step_args)), flush=True)
    if args.dry_run:
        return 0
    step_id = add_spark_step(
        emr,
        cluster_id=cluster_id,
        name=args.name,
        spark_submit_args=step_args,
        action_on_failure=cfg.action_on_failure,
    )
    print(f"added step {step_id} to {cluster_id}", flush=True)
    if args.no_wait:
        return 0
    try:
        wait_for_step(
            emr,
            s3,
            cluster_id=cluster_id,
            step_id=step_id,
            timeout_s=args.timeout or cfg.step_timeout_s,
            poll_s=args.poll or cfg.poll_s,
            log_uri=cfg.log_uri or None,
            log_wait_s=args.log_wait,
        )
    except StepFailedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.stderr is not None:
            print("----- step stderr -----", file=sys.stderr)
            print(exc.stderr, file=sys.stderr)
        else:
            print("(step stderr not found in the log location yet)", file=sys.stderr)
        return 1
    except StepTimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"step {step_id} COMPLETED")
    return 0


def _cmd_serverless(args: argparse.Namespace) -> int:
    from lakehouse.deploy.spark_submit import _job_args, _parse_conf

    settings, uris, (_, _, client) = _prepare(args)
    cfg = _emr_cfg(settings)
    if args.dry_run:
        print(
            serverless_submit_parameters(
                settings,
                archive_uri=_archive_uri(uris),
                conf_archive_uri=_archive_uri(uris, "conf"),
            )
        )
        return 0
    job_run_id = start_serverless_job(
        client,
        settings,
        entry_uri=uris["lakehouse_entry.py"],
        archive_uri=_archive_uri(uris),
        conf_archive_uri=_archive_uri(uris, "conf"),
        job_args=_job_args(args.job_args),
        name=args.name,
        conf_overrides=_parse_conf(args.conf),
    )
    print(f"started job run {job_run_id}", flush=True)
    if args.no_wait:
        return 0
    try:
        wait_for_job_run(
            client,
            application_id=cfg.serverless_application_id,
            job_run_id=job_run_id,
            timeout_s=args.timeout or cfg.step_timeout_s,
            poll_s=args.poll or cfg.poll_s,
        )
    except EmrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    settings = _load_emr(args)
    cfg = _emr_cfg(settings)
    _, _, client = _clients(settings)
    cancel_job_run(
        client,
        application_id=_require(
            cfg.serverless_application_id, "serverless_application_id", settings
        ),
        job_run_id=args.job_run_id,
    )
    print(f"cancelled job run {args.job_run_id}")
    return 0


def register_cli(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``emr``, ``emr-serverless`` and ``emr-serverless-cancel`` to ``lakehouse submit``."""
    for name, handler, help_text in (
        ("emr", _cmd_emr, "upload artifacts, add an EMR step, wait, print stderr on failure"),
        ("emr-serverless", _cmd_serverless, "upload artifacts, start an EMR Serverless run"),
    ):
        p = sub.add_parser(name, help=help_text)
        add_common(p)
        p.add_argument("--name", default="lakehouse")
        p.add_argument(
            "--timeout", type=int, default=None, help="seconds (submit.emr.step_timeout_s)"
        )
        p.add_argument("--poll", type=int, default=None, help="seconds between polls")
        p.add_argument(
            "--log-wait",
            type=int,
            default=120,
            help="seconds to wait for the failed step's stderr.gz to reach S3",
        )
        p.add_argument("--no-wait", action="store_true")
        p.add_argument("job_args", nargs=argparse.REMAINDER)
        p.set_defaults(handler=handler)
    cancel = sub.add_parser("emr-serverless-cancel", help="cancel an EMR Serverless job run")
    cancel.add_argument("job_run_id")
    cancel.add_argument("--env", default=None)
    cancel.add_argument("--conf-dir", default=None)
    cancel.set_defaults(handler=_cmd_cancel)
