"""EMR on EKS: the packaged job as a job run on a virtual cluster (boto3 ``emr-containers``).

The build is checked and uploaded as for EMR on EC2
(:func:`lakehouse.deploy.emr.stage_artifacts`); :func:`start_eks_job` starts a run with a
``sparkSubmitJobDriver`` (entry point, arguments, and ``sparkSubmitParameters`` that ship
the packed environment as ``spark.archives=...#environment``), :func:`wait_for_eks_job_run`
polls ``describe_job_run`` and, on failure, names where the driver's logs are, and
:func:`cancel_eks_job_run` cancels it. Virtual cluster, job execution role, release, log
location and KMS key come from ``submit.emr`` (Terraform outputs).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from lakehouse.config import Settings
from lakehouse.deploy.emr import emr_settings, require_setting
from lakehouse.deploy.emr_serverless import (
    JobRunFailedError,
    monitoring_overrides,
    poll_job_run,
    submit_parameters,
)

__all__ = [
    "cancel_eks_job_run",
    "eks_release_label",
    "eks_submit_parameters",
    "start_eks_job",
    "wait_for_eks_job_run",
]

_FAILED_STATES = ("FAILED", "CANCELLED", "CANCEL_PENDING")


def eks_release_label(release_label: str) -> str:
    """EMR on EKS names releases with a suffix: ``-latest`` (the newest patch) or a date.

    Examples
    --------
    >>> eks_release_label("emr-7.12.0")
    'emr-7.12.0-latest'
    >>> eks_release_label("emr-7.12.0-20251101")
    'emr-7.12.0-20251101'
    """
    if re.search(r"-(latest|\d{8})$", release_label):
        return release_label
    return f"{release_label}-latest"


def eks_submit_parameters(
    settings: Settings,
    *,
    archive_uri: str | None,
    conf_archive_uri: str | None = None,
    conf_overrides: Mapping[str, str] | None = None,
) -> str:
    """``sparkSubmitParameters`` for EMR on EKS: ``--conf`` pairs, packed environment."""
    return submit_parameters(
        settings,
        target="emr-eks",
        driver_env="spark.kubernetes.driverEnv.",
        archive_uri=archive_uri,
        conf_archive_uri=conf_archive_uri,
        conf_overrides=conf_overrides,
    )


def start_eks_job(
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
    """Start a job run on the EMR on EKS virtual cluster; returns its id."""
    emr = emr_settings(settings)
    request: dict[str, Any] = {
        "name": name,
        "virtualClusterId": require_setting(
            emr.eks_virtual_cluster_id, "eks_virtual_cluster_id", settings
        ),
        "executionRoleArn": require_setting(
            emr.eks_execution_role_arn, "eks_execution_role_arn", settings
        ),
        "releaseLabel": eks_release_label(emr.release_label),
        "jobDriver": {
            "sparkSubmitJobDriver": {
                "entryPoint": entry_uri,
                "entryPointArguments": list(job_args),
                "sparkSubmitParameters": eks_submit_parameters(
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
    job_run_id: str = client.start_job_run(**request)["id"]
    return job_run_id


def wait_for_eks_job_run(
    client: Any,
    *,
    virtual_cluster_id: str,
    job_run_id: str,
    timeout_s: int,
    poll_s: int,
    log_uri: str = "",
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll ``describe_job_run`` until COMPLETED; :class:`JobRunFailedError` (naming the
    driver's log location under ``log_uri``) on FAILED/CANCELLED, or a timeout."""
    try:
        return poll_job_run(
            lambda: client.describe_job_run(id=job_run_id, virtualClusterId=virtual_cluster_id)[
                "jobRun"
            ],
            label=f"EMR on EKS job run {job_run_id}",
            success="COMPLETED",
            failed=_FAILED_STATES,
            timeout_s=timeout_s,
            poll_s=poll_s,
            cancel_hint=f"lakehouse submit emr-eks-cancel {job_run_id}",
            out=out,
            sleep=sleep,
        )
    except JobRunFailedError as exc:
        if not log_uri:
            raise
        # EMR on EKS writes <logUri>/<virtual cluster>/jobs/<job run>/containers/<app>/...
        logs = f"{log_uri.rstrip('/')}/{virtual_cluster_id}/jobs/{job_run_id}/containers/"
        raise JobRunFailedError(f"{exc}; driver and executor logs under {logs}") from exc


def cancel_eks_job_run(client: Any, *, virtual_cluster_id: str, job_run_id: str) -> None:
    """Cancel an EMR on EKS job run."""
    client.cancel_job_run(id=job_run_id, virtualClusterId=virtual_cluster_id)
