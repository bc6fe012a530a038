"""The ``spark-submit`` command for the native targets: local, standalone, YARN, Kubernetes.

:func:`effective_conf` is the Spark configuration every target gets (the EMR, EMR
Serverless and spark-operator modules build on it too). It merges, later wins:

1. ``spark.conf`` of the environment,
2. the spot-aware allocation computed from ``submit.cluster``
   (:func:`lakehouse.deploy.allocation.spot_aware_allocation`),
3. ``submit.conf``,
4. ``conf_overrides`` (``--conf key=value`` on the command line),

and adds Delta's SQL extension/catalog, the redaction regex, the S3A settings, Delta's jars
and, for ``s3a://`` paths, hadoop-aws (when the platform does not provide them) and the packed environment (``spark.archives=<env>.tar.gz#environment``
with ``spark.pyspark.python=./environment/bin/python``).

:func:`build_submit_command` turns it into the argv for one target; the differences between
targets are the data in :data:`MASTER_PREFIXES`. ``spark-submit.sh`` and
``lakehouse submit <target>`` (:mod:`lakehouse.cli.submit`) print it with secrets redacted
(:meth:`SubmitCommand.redacted`) and run it.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lakehouse.config import Settings, SubmitSettings
from lakehouse.deploy.allocation import spot_aware_allocation
from lakehouse.deploy.artifacts import ArtifactPaths
from lakehouse.errors import LakehouseError
from lakehouse.redaction import redact_argv, redact_value
from lakehouse.spark.session import (
    LOCAL_BIND_CONF,
    cache_dir,
    spark_conf_for,
    spark_packages,
)

__all__ = [
    "ENV_PYTHON",
    "MASTER_PREFIXES",
    "SPARK_SUBMIT_TARGETS",
    "SubmitCommand",
    "SubmitError",
    "build_submit_command",
    "effective_conf",
    "find_spark_submit",
    "missing_artifacts",
]

#: What ``--master`` must start with, per native spark-submit target.
MASTER_PREFIXES = {"local": "local", "standalone": "spark://", "yarn": "yarn", "k8s": "k8s://"}
SPARK_SUBMIT_TARGETS = tuple(MASTER_PREFIXES)
#: The interpreter inside the unpacked env archive (``spark.archives=...#environment``).
ENV_PYTHON = "./environment/bin/python"


class SubmitError(LakehouseError, ValueError):
    """The submit request is inconsistent with the configuration or the build."""


def _session_conf(settings: Settings) -> dict[str, str]:
    # what a session built in the submitted JVM gets (master and packages come from the
    # submission): Delta's extensions, redaction, the S3 log store, spark.conf
    return spark_conf_for(settings, submitted=True)


def _submit_conf(submit: SubmitSettings | None) -> dict[str, str]:
    """The allocation computed from ``submit.cluster``, then ``submit.conf`` over it."""
    if submit is None:
        return {}
    conf: dict[str, str] = {}
    if submit.cluster is not None:
        conf.update(spot_aware_allocation(submit.cluster).conf)
    conf.update(submit.conf)
    if submit.driver_memory:
        conf["spark.driver.memory"] = submit.driver_memory
    return conf


def _jars_conf(settings: Settings, provides_jars: bool) -> dict[str, str]:
    """Delta's jars, and hadoop-aws for ``s3a://`` paths, from Maven (:func:`spark_packages`)
    unless the platform provides them."""
    packages = [] if provides_jars else spark_packages(settings)
    if not packages:
        return {}
    return {
        "spark.jars.packages": ",".join(packages),
        "spark.jars.ivy": settings.spark.ivy_dir or str(cache_dir() / "ivy"),
    }


def _archives_conf(
    artifacts: ArtifactPaths | None, target: str, deploy_mode: str
) -> dict[str, str]:
    """The env archive (not for ``local``) and, in cluster mode, the resolved ``conf/``."""
    if artifacts is None:
        return {}
    conf: dict[str, str] = {}
    archives: list[str] = []
    if target != "local" and artifacts.env_archive:
        archives.append(f"{artifacts.env_archive}#environment")
        conf["spark.pyspark.python"] = ENV_PYTHON
        if deploy_mode == "cluster":
            conf["spark.pyspark.driver.python"] = ENV_PYTHON
    if deploy_mode == "cluster" and artifacts.conf_archive:
        # The driver runs on the cluster: it finds the resolved configuration in ./conf.
        archives.append(f"{artifacts.conf_archive}#conf")
    if archives:
        conf["spark.archives"] = ",".join(archives)
    return conf


def _kubernetes_conf(submit: SubmitSettings | None) -> dict[str, str]:
    if submit is None:
        return {}
    k8s = submit.kubernetes
    conf = {
        "spark.kubernetes.namespace": k8s.namespace,
        "spark.kubernetes.authenticate.driver.serviceAccountName": k8s.service_account,
        "spark.kubernetes.container.image": k8s.image,
    }
    if k8s.artifacts_uri:
        conf["spark.kubernetes.file.upload.path"] = k8s.artifacts_uri
    return conf


def effective_conf(
    settings: Settings,
    *,
    target: str,
    artifacts: ArtifactPaths | None = None,
    deploy_mode: str = "client",
    conf_overrides: Mapping[str, str] | None = None,
    artifact_base_uri: str | None = None,
    provides_jars: bool = False,
) -> dict[str, str]:
    """The Spark configuration a submission to ``target`` gets (see module docstring).

    Parameters
    ----------
    artifacts:
        The build; its env archive (and in cluster mode its conf archive) are shipped.
    artifact_base_uri:
        Where the artifacts were uploaded: they are referenced there instead of locally.
    provides_jars:
        Whether the platform puts Delta's jars and hadoop-aws on the classpath (EMR, the
        job image on Kubernetes); else those of ``spark.delta_package`` and
        ``spark.s3a.package`` that are not null are resolved from Maven.

    Examples
    --------
    >>> from lakehouse.config import load_config
    >>> conf = effective_conf(load_config("standalone"), target="standalone")
    >>> conf["spark.decommission.enabled"], conf["spark.dynamicAllocation.maxExecutors"]
    ('true', '2')
    """
    if artifacts is not None:
        artifacts = artifacts.rebased(artifact_base_uri)
    conf = _session_conf(settings)
    conf.update(_submit_conf(settings.submit))
    conf.update(_jars_conf(settings, provides_jars))
    conf.update(_archives_conf(artifacts, target, deploy_mode))
    if target == "k8s":
        conf.update(_kubernetes_conf(settings.submit))
    conf.update(conf_overrides or {})
    return conf


@dataclass(frozen=True)
class SubmitCommand:
    """A ready ``spark-submit`` invocation."""

    argv: list[str]
    conf: dict[str, str]
    env: dict[str, str]

    def redacted(self) -> str:
        """The command line as printed: shell-quoted, secrets redacted."""
        return shlex.join(redact_argv(self.argv))

    def redacted_conf(self) -> dict[str, str]:
        """The configuration with secrets redacted, sorted by key."""
        return {k: redact_value(k, v) for k, v in sorted(self.conf.items())}


def find_spark_submit() -> str:
    """``$SPARK_HOME/bin/spark-submit``, else the pyspark install's, else ``spark-submit``."""
    home = os.environ.get("SPARK_HOME")
    if home and (Path(home) / "bin" / "spark-submit").is_file():
        return str(Path(home) / "bin" / "spark-submit")
    try:
        # Only to locate its bin/ directory; pyspark is optional on a submitting machine.
        import pyspark
    except ImportError:
        return "spark-submit"
    candidate = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    return str(candidate) if candidate.is_file() else "spark-submit"


def _master_and_mode(
    settings: Settings, target: str, master: str | None, deploy_mode: str | None
) -> tuple[str, str]:
    """The ``--master`` and ``--deploy-mode`` for ``target``; refuses what cannot work."""
    if target not in MASTER_PREFIXES:
        raise SubmitError(
            f"unknown spark-submit target {target!r}; allowed: {list(SPARK_SUBMIT_TARGETS)}"
        )
    submit = settings.submit
    mode = deploy_mode or (submit.deploy_mode if submit else "client")
    resolved = master or (submit.master if submit else None) or settings.spark.master or ""
    if target == "local":
        resolved, mode = master or "local[2]", "client"
    elif target == "k8s" and not resolved.startswith("k8s://"):
        api = submit.kubernetes.api_server if submit else "https://kubernetes.default.svc"
        resolved = f"k8s://{api}"
    elif target == "yarn":
        resolved = "yarn"
    if not resolved.startswith(MASTER_PREFIXES[target]):
        raise SubmitError(
            f"target {target!r} needs a master starting with {MASTER_PREFIXES[target]!r}; "
            f"found {resolved or None!r} (set submit.master in conf/env/{settings.env}.yaml "
            "or pass --master)"
        )
    if target == "standalone" and mode == "cluster":
        raise SubmitError(
            "Spark standalone does not support cluster deploy mode for Python applications; "
            "required: --deploy-mode client"
        )
    return resolved, mode


def build_submit_command(
    settings: Settings,
    *,
    target: str,
    artifacts: ArtifactPaths,
    job_args: Sequence[str] = (),
    app: str | None = None,
    master: str | None = None,
    deploy_mode: str | None = None,
    conf_overrides: Mapping[str, str] | None = None,
    artifact_base_uri: str | None = None,
    spark_submit: str | None = None,
) -> SubmitCommand:
    """The ``spark-submit`` argv for ``target`` (``local``, ``standalone``, ``yarn``, ``k8s``).

    Parameters
    ----------
    settings:
        The environment's configuration (its ``submit:`` section may be absent for ``local``).
    artifacts:
        The build (see :func:`lakehouse.deploy.artifacts.expected_artifacts`).
    job_args:
        Passed through unchanged after the application file.
    app:
        Application file; default the build's ``lakehouse_entry.py``.
    master, deploy_mode:
        Override ``submit.master`` / ``submit.deploy_mode``.
    artifact_base_uri:
        Where the artifacts were uploaded (``s3://...``): referenced there instead of locally.

    Raises
    ------
    SubmitError
        Unknown target, a master that does not fit the target, cluster mode where Spark
        does not support it for Python.
    """
    resolved_master, mode = _master_and_mode(settings, target, master, deploy_mode)
    artifacts = artifacts.rebased(artifact_base_uri)
    conf = effective_conf(
        settings,
        target=target,
        artifacts=artifacts,
        deploy_mode=mode,
        conf_overrides=conf_overrides,
    )
    if resolved_master.startswith("local"):
        # as build_spark_session does: a local driver listens on the loopback interface only
        for key, value in LOCAL_BIND_CONF.items():
            conf.setdefault(key, value)
    argv = [spark_submit or find_spark_submit(), "--master", resolved_master]
    argv += ["--deploy-mode", mode, "--name", conf["spark.app.name"]]
    if mode == "client":
        # The driver runs here: the project wheel goes on its PYTHONPATH (zipimport).
        argv += ["--py-files", artifacts.wheel]
        # spark.pyspark.python (the executors') would win over the environment for the
        # driver too: name the driver's interpreter explicitly.
        driver_python = os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable)
        conf.setdefault("spark.pyspark.driver.python", driver_python)
        if target == "local":
            conf.setdefault("spark.pyspark.python", driver_python)
    for key in sorted(conf):
        if key != "spark.app.name":
            argv += ["--conf", f"{key}={conf[key]}"]
    argv.append(app or artifacts.entry)
    argv += list(job_args)
    return SubmitCommand(argv=argv, conf=conf, env={})


def missing_artifacts(artifacts: ArtifactPaths, *, target: str) -> list[str]:
    """The local artifact files a submission to ``target`` needs that are not built yet."""
    needed = [artifacts.wheel]
    if target != "local" and artifacts.env_archive:
        needed.append(artifacts.env_archive)
    return [p for p in needed if "://" not in p and not Path(p).is_file()]
