"""Kubernetes: spark-operator ``SparkApplication`` manifests from the same configuration.

:func:`spark_application` turns an environment's configuration (``submit.kubernetes`` and
``submit.cluster``) plus the artifact URIs into a ``sparkoperator.k8s.io/v1beta2``
``SparkApplication``:

- driver on on-demand nodes (``nodeSelector`` from ``driver_node_selector``),
- executors on spot nodes (``nodeSelector`` + a ``NoSchedule`` toleration of the spot taint),
- ``spec.dynamicAllocation`` (min/initial/max from :mod:`lakehouse.deploy.allocation`) and
  shuffle tracking + graceful decommissioning in ``sparkConf``,
- the packed environment in ``deps.archives`` (``...#environment``) and
  ``spark.pyspark.python=./environment/bin/python``.

:func:`validate_manifest` checks a manifest against the fields spark-operator's v1beta2 API
defines (``api/v1beta2/sparkapplication_types.go``; the subset this project emits is
embedded in :data:`SPARK_APPLICATION_SCHEMA`): unknown fields, wrong types, missing required
fields and enum values are errors.

Examples
--------
>>> parse_selector("lakehouse/capacity=spot")
{'lakehouse/capacity': 'spot'}
>>> parse_toleration("lakehouse/capacity=spot:NoSchedule")
{'key': 'lakehouse/capacity', 'operator': 'Equal', 'value': 'spot', 'effect': 'NoSchedule'}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from lakehouse.config import Settings
from lakehouse.config.models import KubernetesSubmitSettings
from lakehouse.deploy.allocation import spot_aware_allocation
from lakehouse.deploy.artifacts import ArtifactPaths, Artifacts, check_target
from lakehouse.deploy.spark_submit import ENV_PYTHON, effective_conf
from lakehouse.errors import LakehouseError

__all__ = [
    "API_VERSION",
    "SPARK_APPLICATION_SCHEMA",
    "ManifestError",
    "artifact_uris",
    "parse_selector",
    "parse_toleration",
    "prometheus_annotations",
    "spark_application",
    "to_yaml",
    "validate_manifest",
]

API_VERSION = "sparkoperator.k8s.io/v1beta2"


class ManifestError(LakehouseError, ValueError):
    """A manifest or its inputs do not satisfy spark-operator's v1beta2 API."""


def _json_object(text: str, what: str) -> dict[str, str] | None:
    """A JSON object (how ``tf-env`` exports Terraform map outputs), else None."""
    if not text.strip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{what}: invalid JSON object {text!r}: {exc.msg}") from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ManifestError(f"{what}: must map strings to strings; found {text!r}")
    return value


def parse_selector(text: str) -> dict[str, str]:
    """``"k=v,k2=v2"`` or a JSON object (a Terraform map output) -> ``{"k": "v", ...}``."""
    as_json = _json_object(text, "node selector")
    if as_json is not None:
        return as_json
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ManifestError(f"node selector must be key=value[,key=value]; found {text!r}")
        out[key] = value
    return out


_TOLERATION = re.compile(
    r"^(?P<key>[^=:]+)(=(?P<value>[^:]*))?:(?P<effect>NoSchedule|PreferNoSchedule|NoExecute)$"
)


def parse_toleration(text: str) -> dict[str, str]:
    """``"key=value:Effect"``, ``"key:Effect"`` or a JSON object -> a Kubernetes toleration."""
    as_json = _json_object(text, "toleration")
    if as_json is not None:
        allowed = {"key", "operator", "value", "effect"}
        if not as_json.keys() <= allowed or "key" not in as_json:
            raise ManifestError(
                f"toleration must have key and only {sorted(allowed)}; found {sorted(as_json)}"
            )
        return {k: as_json[k] for k in ("key", "operator", "value", "effect") if k in as_json}
    match = _TOLERATION.match(text.strip())
    if not match:
        raise ManifestError(
            "toleration must be key=value:Effect with Effect one of NoSchedule, "
            f"PreferNoSchedule, NoExecute; found {text!r}"
        )
    if match.group("value") is None:
        return {"key": match.group("key"), "operator": "Exists", "effect": match.group("effect")}
    return {
        "key": match.group("key"),
        "operator": "Equal",
        "value": match.group("value"),
        "effect": match.group("effect"),
    }


def _dns_name(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not cleaned:
        raise ManifestError(f"application name {name!r} has no usable characters")
    return cleaned[:63].rstrip("-")


_NODE_SELECTOR_CONF = (
    "spark.kubernetes.driver.node.selector.",
    "spark.kubernetes.executor.node.selector.",
)
_DYNAMIC_ALLOCATION_KEYS = ("enabled", "minExecutors", "maxExecutors", "initialExecutors")


def _dynamic_allocation(settings: Settings, conf: dict[str, str]) -> dict[str, Any]:
    """``spec.dynamicAllocation`` from ``submit.cluster``; its Spark properties leave ``conf``."""
    cluster = settings.submit.cluster if settings.submit else None
    if cluster is None:
        return {"enabled": False}
    plan = spot_aware_allocation(cluster)
    for key in _DYNAMIC_ALLOCATION_KEYS:
        conf.pop(f"spark.dynamicAllocation.{key}", None)
    return {
        "enabled": True,
        "initialExecutors": plan.initial_executors,
        "minExecutors": plan.min_executors,
        "maxExecutors": plan.max_executors,
    }


_PROMETHEUS_SINK = "spark.metrics.conf.*.sink.prometheusServlet"


def prometheus_annotations(conf: Mapping[str, str]) -> dict[str, str]:
    """Scrape annotations for the driver pod when ``conf`` enables Spark's
    ``PrometheusServlet`` sink (on the driver UI port, ``spark.ui.port``, default 4040).

    Examples
    --------
    >>> prometheus_annotations({})
    {}
    >>> prometheus_annotations({
    ...     "spark.metrics.conf.*.sink.prometheusServlet.class":
    ...         "org.apache.spark.metrics.sink.PrometheusServlet",
    ...     "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus"})
    {'prometheus.io/scrape': 'true', 'prometheus.io/port': '4040', 'prometheus.io/path': '/metrics/prometheus'}
    """
    if not conf.get(f"{_PROMETHEUS_SINK}.class", "").endswith("PrometheusServlet"):
        return {}
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": conf.get("spark.ui.port", "4040"),
        "prometheus.io/path": conf.get(f"{_PROMETHEUS_SINK}.path", "/metrics/prometheus"),
    }


def _pods(
    k8s: KubernetesSubmitSettings, conf: dict[str, str], labels: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Driver and executor pod specs; the executor's size moves from ``conf`` to fields."""
    common = {
        "serviceAccount": k8s.service_account,
        "labels": dict(labels),
        "env": [{"name": "AWS_REGION", "value": k8s.region}],
    }
    driver: dict[str, Any] = {
        "cores": k8s.driver_cores,
        "memory": k8s.driver_memory,
        "nodeSelector": parse_selector(k8s.driver_node_selector),
        **common,
    }
    executor: dict[str, Any] = {
        "cores": int(conf.pop("spark.executor.cores", "1")),
        "memory": conf.pop("spark.executor.memory", "2g"),
        "nodeSelector": parse_selector(k8s.executor_node_selector),
        **common,
    }
    overhead = conf.pop("spark.executor.memoryOverhead", None)
    if overhead:
        executor["memoryOverhead"] = overhead
    if k8s.executor_toleration:
        executor["tolerations"] = [parse_toleration(k8s.executor_toleration)]
    return driver, executor


def artifact_uris(
    settings: Settings, artifacts: Artifacts, *, artifacts_uri: str | None = None
) -> ArtifactPaths:
    """Where the manifest finds the build: ``<artifacts_uri>/<version>/<file>``.

    ``artifacts_uri`` defaults to ``submit.kubernetes.artifacts_uri``; the build is checked
    against ``submit.kubernetes.spark_version`` first
    (:func:`lakehouse.deploy.artifacts.check_target`). Uploading is left to the user (or CI).
    """
    if settings.submit is None:
        raise ManifestError(f"conf/env/{settings.env}.yaml: no submit section")
    k8s = settings.submit.kubernetes
    check_target(artifacts.manifest, spark_version=k8s.spark_version)
    base = (artifacts_uri or k8s.artifacts_uri).rstrip("/")
    if not base or base.endswith(":/"):
        raise ManifestError(
            "no artifacts URI: set submit.kubernetes.artifacts_uri or pass --artifacts-uri"
        )
    return artifacts.paths().rebased(f"{base}/{artifacts.version}")


def spark_application(
    settings: Settings,
    *,
    name: str,
    entry_uri: str,
    archive_uri: str | None,
    conf_archive_uri: str | None = None,
    job_args: Sequence[str] = (),
    conf_overrides: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A validated ``SparkApplication`` manifest (a plain dict; dump it with :func:`to_yaml`).

    Parameters
    ----------
    settings:
        An environment with a ``submit.kubernetes`` section (``kubernetes``).
    name:
        ``metadata.name`` (made DNS-safe).
    entry_uri, archive_uri, conf_archive_uri:
        Uploaded entry file, env archive and resolved-configuration archive (``s3a://...``).
    job_args:
        ``spec.arguments``.
    """
    if settings.submit is None:
        raise ManifestError(f"conf/env/{settings.env}.yaml: no submit section")
    k8s = settings.submit.kubernetes
    conf = effective_conf(
        settings,
        target="spark-operator",
        artifacts=ArtifactPaths(wheel="", entry=entry_uri, env_archive=None),
        deploy_mode="cluster",
        conf_overrides=conf_overrides,
        provides_jars=True,
    )
    conf.pop("spark.app.name", None)
    # Placement is expressed by the operator's fields, not by duplicate Spark properties.
    conf = {k: v for k, v in conf.items() if not k.startswith(_NODE_SELECTOR_CONF)}
    labels = {"app.kubernetes.io/name": "lakehouse", "app.kubernetes.io/part-of": "lakehouse"}
    driver, executor = _pods(k8s, conf, labels)
    scrape = prometheus_annotations(conf)
    if scrape:
        driver["annotations"] = scrape
    dynamic_allocation = _dynamic_allocation(settings, conf)
    if not dynamic_allocation["enabled"]:
        executor["instances"] = 2
    if archive_uri:
        conf["spark.pyspark.python"] = ENV_PYTHON
        conf["spark.pyspark.driver.python"] = ENV_PYTHON
    spec: dict[str, Any] = {
        "type": "Python",
        "pythonVersion": "3",
        "mode": "cluster",
        "image": k8s.image,
        "imagePullPolicy": k8s.image_pull_policy,
        "sparkVersion": k8s.spark_version,
        "mainApplicationFile": entry_uri,
        "arguments": list(job_args),
        "sparkConf": dict(sorted(conf.items())),
        "restartPolicy": {"type": "Never"},
        "timeToLiveSeconds": k8s.ttl_seconds,
        "dynamicAllocation": dynamic_allocation,
        "driver": driver,
        "executor": executor,
    }
    archives = [f"{archive_uri}#environment"] if archive_uri else []
    if conf_archive_uri:  # the resolved configuration, found by the driver as ./conf
        archives.append(f"{conf_archive_uri}#conf")
    if archives:
        spec["deps"] = {"archives": archives}
    manifest = {
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": {"name": _dns_name(name), "namespace": k8s.namespace, "labels": labels},
        "spec": spec,
    }
    validate_manifest(manifest)
    return manifest


# --------------------------------------------------------------------------- schema

# Field -> type (or nested schema). Taken from kubeflow/spark-operator api/v1beta2
# sparkapplication_types.go (SparkApplicationSpec, SparkPodSpec, DriverSpec, ExecutorSpec,
# Dependencies, RestartPolicy, DynamicAllocation) and core/v1 Toleration/EnvVar: the subset
# of the CRD this project may emit. A field not listed here is rejected.
_STR, _INT, _BOOL = "string", "integer", "boolean"
_MAP = "map[string]string"
_STRLIST = "[]string"

_TOLERATION_SCHEMA: dict[str, Any] = {
    "key": _STR,
    "operator": _STR,
    "value": _STR,
    "effect": _STR,
    "tolerationSeconds": _INT,
}
_ENV_SCHEMA: dict[str, Any] = {"name": _STR, "value": _STR}
_POD_SCHEMA: dict[str, Any] = {
    "cores": _INT,
    "coreLimit": _STR,
    "memory": _STR,
    "memoryOverhead": _STR,
    "image": _STR,
    "env": [_ENV_SCHEMA],
    "envVars": _MAP,
    "labels": _MAP,
    "annotations": _MAP,
    "tolerations": [_TOLERATION_SCHEMA],
    "nodeSelector": _MAP,
    "serviceAccount": _STR,
    "schedulerName": _STR,
    "terminationGracePeriodSeconds": _INT,
    "javaOptions": _STR,
    "coreRequest": _STR,
    "priorityClassName": _STR,
}
SPARK_APPLICATION_SCHEMA: dict[str, Any] = {
    "apiVersion": _STR,
    "kind": _STR,
    "metadata": {"name": _STR, "namespace": _STR, "labels": _MAP, "annotations": _MAP},
    "spec": {
        "type": _STR,
        "sparkVersion": _STR,
        "mode": _STR,
        "proxyUser": _STR,
        "image": _STR,
        "imagePullPolicy": _STR,
        "imagePullSecrets": _STRLIST,
        "mainClass": _STR,
        "mainApplicationFile": _STR,
        "arguments": _STRLIST,
        "sparkConf": _MAP,
        "hadoopConf": _MAP,
        "sparkConfigMap": _STR,
        "hadoopConfigMap": _STR,
        "nodeSelector": _MAP,
        "failureRetries": _INT,
        "retryInterval": _INT,
        "pythonVersion": _STR,
        "memoryOverheadFactor": _STR,
        "batchScheduler": _STR,
        "timeToLiveSeconds": _INT,
        "driver": {
            **_POD_SCHEMA,
            "podName": _STR,
            "kubernetesMaster": _STR,
            "serviceAnnotations": _MAP,
            "serviceLabels": _MAP,
        },
        "executor": {**_POD_SCHEMA, "instances": _INT, "deleteOnTermination": _BOOL},
        "deps": {
            "jars": _STRLIST,
            "files": _STRLIST,
            "pyFiles": _STRLIST,
            "packages": _STRLIST,
            "excludePackages": _STRLIST,
            "repositories": _STRLIST,
            "archives": _STRLIST,
        },
        "restartPolicy": {
            "type": _STR,
            "onSubmissionFailureRetries": _INT,
            "onFailureRetries": _INT,
            "onSubmissionFailureRetryInterval": _INT,
            "onFailureRetryInterval": _INT,
        },
        "dynamicAllocation": {
            "enabled": _BOOL,
            "initialExecutors": _INT,
            "minExecutors": _INT,
            "maxExecutors": _INT,
            "shuffleTrackingTimeout": _INT,
        },
    },
}
_REQUIRED = {
    (): ("apiVersion", "kind", "metadata", "spec"),
    ("metadata",): ("name",),
    ("spec",): ("type", "sparkVersion", "mainApplicationFile", "driver", "executor"),
}
_ENUMS = {
    ("spec", "type"): ("Java", "Python", "Scala", "R"),
    ("spec", "mode"): ("cluster", "client"),
    ("spec", "pythonVersion"): ("2", "3"),
    ("spec", "restartPolicy", "type"): ("Never", "Always", "OnFailure"),
    ("spec", "imagePullPolicy"): ("Always", "IfNotPresent", "Never"),
    ("apiVersion",): (API_VERSION,),
    ("kind",): ("SparkApplication",),
}
_MINIMUM = {
    ("spec", "driver", "cores"): 1,
    ("spec", "executor", "cores"): 1,
    ("spec", "executor", "instances"): 1,
}


def _check(value: Any, schema: Any, path: tuple[str, ...], errors: list[str]) -> None:
    """Append to ``errors`` every way ``value`` (at ``path``) does not fit ``schema``."""
    if isinstance(schema, dict):
        _check_object(value, schema, path, errors)
    elif isinstance(schema, list):
        _check_list(value, schema[0], path, errors)
    else:
        _check_scalar(value, schema, path, errors)


def _where(path: tuple[str, ...]) -> str:
    return ".".join(path) or "<top>"


def _check_object(
    value: Any, schema: dict[str, Any], path: tuple[str, ...], errors: list[str]
) -> None:
    where = _where(path)
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be an object; found {type(value).__name__}")
        return
    errors.extend(
        f"{where}: required field {key!r} is missing"
        for key in _REQUIRED.get(path, ())
        if key not in value
    )
    for key, item in value.items():
        if key in schema:
            _check(item, schema[key], (*path, key), errors)
            continue
        allowed = ", ".join(sorted(schema)) if len(schema) < 8 else "..."
        errors.append(
            f"{where}: unknown field {key!r} (not in spark-operator v1beta2); allowed: [{allowed}]"
        )


def _check_list(value: Any, item_schema: Any, path: tuple[str, ...], errors: list[str]) -> None:
    if not isinstance(value, list):
        errors.append(f"{_where(path)}: must be a list; found {type(value).__name__}")
        return
    for i, item in enumerate(value):
        _check(item, item_schema, (*path, str(i)), errors)


def _is_string_map(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


_SCALAR_CHECKS: dict[str, Any] = {
    _STR: lambda v: isinstance(v, str),
    _INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
    _BOOL: lambda v: isinstance(v, bool),
    _MAP: _is_string_map,
    _STRLIST: lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
}


def _check_scalar(value: Any, schema: str, path: tuple[str, ...], errors: list[str]) -> None:
    where = _where(path)
    if not _SCALAR_CHECKS[schema](value):
        errors.append(f"{where}: must be {schema}; found {value!r}")
    elif path in _ENUMS and value not in _ENUMS[path]:
        errors.append(f"{where}: must be one of {list(_ENUMS[path])}; found {value!r}")
    elif path in _MINIMUM and value < _MINIMUM[path]:
        errors.append(f"{where}: must be >= {_MINIMUM[path]}; found {value!r}")


def validate_manifest(manifest: Mapping[str, Any]) -> None:
    """Check ``manifest`` against spark-operator's v1beta2 fields.

    Raises
    ------
    ManifestError
        Listing every problem (unknown field, wrong type, missing required field, enum).

    Examples
    --------
    >>> validate_manifest({"apiVersion": API_VERSION, "kind": "SparkApplication",
    ...     "metadata": {"name": "x"}, "spec": {"type": "Python", "sparkVersion": "4.1.1",
    ...     "mainApplicationFile": "s3a://b/e.py", "driver": {}, "executor": {"replicas": 2}}})
    Traceback (most recent call last):
    ...
    lakehouse.deploy.kubernetes.ManifestError: invalid SparkApplication:
      spec.executor: unknown field 'replicas' (not in spark-operator v1beta2); allowed: [...]
    """
    errors: list[str] = []
    _check(manifest, SPARK_APPLICATION_SCHEMA, (), errors)
    if errors:
        raise ManifestError("invalid SparkApplication:\n  " + "\n  ".join(errors))


def to_yaml(manifest: Mapping[str, Any]) -> str:
    """The manifest as YAML (``kubectl apply -f -``)."""
    return yaml.safe_dump(dict(manifest), sort_keys=False, default_flow_style=False)
