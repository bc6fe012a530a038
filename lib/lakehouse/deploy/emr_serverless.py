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
    "serverless_submit_parameters",
    "start_serverless_job",
    "wait_for_job_run",
]

_FINAL_JOB_RUN_STATES = ("SUCCESS", "FAILED", "CANCELLED")


class JobRunFailedError(EmrError):
    """The EMR Serverless job run ended in FAILED or CANCELLED."""


def serverless_submit_parameters(
    settings: Settings,
    *,
    archive_uri: str | None,
    conf_archive_uri: str | None = None,
    conf_overrides: Mapping[str, str] | None = None,
) -> str:
    """``sparkSubmitParameters`` for EMR Serverless: ``--conf`` pairs, packed environment."""
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
        conf["spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"] = ENV_PYTHON
        conf["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] = ENV_PYTHON
        conf["spark.executorEnv.PYSPARK_PYTHON"] = ENV_PYTHON
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
