"""EMR Serverless: the packaged job as a job run of a Serverless application (boto3).

The build is checked and uploaded as for EMR on EC2
(:func:`lakehouse.deploy.emr.stage_artifacts`); :func:`start_serverless_job` starts a run
with a ``sparkSubmit`` job driver whose ``sparkSubmitParameters``
(:func:`serverless_submit_parameters`) ship the packed environment as
``spark.archives=...#environment`` and point the driver and executors at its interpreter;
:func:`wait_for_job_run` polls it, :func:`cancel_job_run` cancels it. Application id,
execution role, log location and KMS key come from ``submit.emr`` (Terraform outputs).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from lakehouse.config import Settings
from lakehouse.deploy.artifacts import ArtifactPaths
from lakehouse.deploy.emr import EmrError, StepTimeoutError, emr_settings, require_setting
from lakehouse.deploy.spark_submit import ENV_PYTHON, effective_conf

__all__ = [
    "JobRunFailedError",
    "cancel_job_run",
    "monitoring_overrides",
    "poll_job_run",
    "serverless_submit_parameters",
    "start_serverless_job",
    "submit_parameters",
    "wait_for_job_run",
]

_FAILED_STATES = ("FAILED", "CANCELLED")


class JobRunFailedError(EmrError):
    """An EMR job run (Serverless, or EMR on EKS) ended in FAILED or CANCELLED."""


def submit_parameters(
    settings: Settings,
    *,
    target: str,
    driver_env: str,
    archive_uri: str | None,
    conf_archive_uri: str | None = None,
    conf_overrides: Mapping[str, str] | None = None,
) -> str:
    """``sparkSubmitParameters`` of an EMR job run (Serverless, or EMR on EKS): ``--conf``
    pairs with the packed environment. ``driver_env`` is the prefix of the driver's
    environment variables on that platform (``spark.emr-serverless.driverEnv.``,
    ``spark.kubernetes.driverEnv.``)."""
    conf = effective_conf(
        settings,
        target=target,
        artifacts=ArtifactPaths(
            wheel="", entry="", env_archive=archive_uri, conf_archive=conf_archive_uri
        ),
        deploy_mode="cluster",
        conf_overrides=conf_overrides,
        provides_jars=True,
    )
    conf.pop("spark.app.name", None)
    # The platform sizes and places its own workers; YARN labels do not apply there.
    conf.pop("spark.yarn.am.nodeLabelExpression", None)
    if archive_uri:
        conf[f"{driver_env}PYSPARK_DRIVER_PYTHON"] = ENV_PYTHON
        conf[f"{driver_env}PYSPARK_PYTHON"] = ENV_PYTHON
        conf["spark.executorEnv.PYSPARK_PYTHON"] = ENV_PYTHON
    spaced = sorted(k for k, v in conf.items() if any(c.isspace() for c in k + v))
    if spaced:
        # sparkSubmitParameters is split on whitespace; quoting is not honoured.
        raise EmrError(f"{target} cannot pass Spark properties containing spaces: {spaced}")
    return " ".join(f"--conf {k}={v}" for k, v in sorted(conf.items()))


def serverless_submit_parameters(
    settings: Settings,
    *,
    archive_uri: str | None,
    conf_archive_uri: str | None = None,
    conf_overrides: Mapping[str, str] | None = None,
) -> str:
    """``sparkSubmitParameters`` for EMR Serverless: ``--conf`` pairs, packed environment."""
    return submit_parameters(
        settings,
        target="emr-serverless",
        driver_env="spark.emr-serverless.driverEnv.",
        archive_uri=archive_uri,
        conf_archive_uri=conf_archive_uri,
        conf_overrides=conf_overrides,
    )


def monitoring_overrides(settings: Settings) -> dict[str, Any]:
    """``configurationOverrides`` sending the run's logs to ``submit.emr.log_uri`` (SSE-KMS
    with ``kms_key_arn`` when set); empty without a log location."""
    emr = emr_settings(settings)
    if not emr.log_uri:
        return {}
    s3_monitoring: dict[str, str] = {"logUri": emr.log_uri}
    if emr.kms_key_arn:
        s3_monitoring["encryptionKeyArn"] = emr.kms_key_arn
    return {"monitoringConfiguration": {"s3MonitoringConfiguration": s3_monitoring}}


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
    emr = emr_settings(settings)
    request: dict[str, Any] = {
        "applicationId": require_setting(
            emr.serverless_application_id, "serverless_application_id", settings
        ),
        "executionRoleArn": require_setting(
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
    overrides = monitoring_overrides(settings)
    if overrides:
        request["configurationOverrides"] = overrides
    response = client.start_job_run(**request)
    job_run_id: str = response["jobRunId"]
    return job_run_id


def poll_job_run(
    describe: Callable[[], Mapping[str, Any]],
    *,
    label: str,
    success: str,
    failed: Sequence[str],
    timeout_s: int,
    poll_s: int,
    cancel_hint: str,
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll ``describe()`` (a job run: ``state``, ``stateDetails``, ``failureReason``),
    printing each new state, until ``success``; :class:`JobRunFailedError` on a state in
    ``failed``, :class:`StepTimeoutError` after ``timeout_s`` (naming ``cancel_hint``)."""
    out = out or sys.stdout
    started = time.monotonic()
    last = ""
    while True:
        run = describe()
        state = str(run["state"])
        if state != last:
            print(f"[{time.monotonic() - started:6.0f}s] {label}: {state}", file=out, flush=True)
            last = state
        if state == success:
            return state
        if state in failed:
            details = "; ".join(
                str(run[k]) for k in ("failureReason", "stateDetails") if run.get(k)
            )
            raise JobRunFailedError(f"{label} ended {state}: {details or 'no details'}")
        if time.monotonic() - started >= timeout_s:
            raise StepTimeoutError(
                f"{label} not finished after {timeout_s}s (last state {state}); "
                f"cancel it with: {cancel_hint}"
            )
        sleep(poll_s)


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
    return poll_job_run(
        lambda: client.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"],
        label=f"job run {job_run_id}",
        success="SUCCESS",
        failed=_FAILED_STATES,
        timeout_s=timeout_s,
        poll_s=poll_s,
        cancel_hint=f"lakehouse submit emr-serverless-cancel {job_run_id}",
        out=out,
        sleep=sleep,
    )


def cancel_job_run(client: Any, *, application_id: str, job_run_id: str) -> None:
    """Cancel an EMR Serverless job run."""
    client.cancel_job_run(applicationId=application_id, jobRunId=job_run_id)
