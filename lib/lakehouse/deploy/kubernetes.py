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

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lakehouse.config import Settings

__all__ = [
    "SPARK_APPLICATION_SCHEMA",
    "ManifestError",
    "parse_selector",
    "parse_toleration",
    "register_cli",
    "spark_application",
    "to_yaml",
    "validate_manifest",
]

API_VERSION = "sparkoperator.k8s.io/v1beta2"


class ManifestError(ValueError):
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
    entry_uri, archive_uri:
        Uploaded entry file and env archive (``s3a://...``).
    job_args:
        ``spec.arguments``.
    """
    from lakehouse.deploy.allocation import spot_aware_allocation
    from lakehouse.deploy.spark_submit import ArtifactPaths, effective_conf

    submit = settings.submit
    if submit is None:
        raise ManifestError(f"conf/env/{settings.env}.yaml: no submit section")
    k8s = submit.kubernetes
    conf = effective_conf(
        settings,
        target="spark-operator",
        artifacts=ArtifactPaths(wheel="", entry=entry_uri, env_archive=None),
        deploy_mode="cluster",
        conf_overrides=conf_overrides,
        provides_delta=True,
    )
    conf.pop("spark.app.name", None)
    driver_selector = parse_selector(k8s.driver_node_selector)
    executor_selector = parse_selector(k8s.executor_node_selector)
    toleration = parse_toleration(k8s.executor_toleration) if k8s.executor_toleration else None
    # Placement is expressed by the operator's fields, not by duplicate Spark properties.
    for key in list(conf):
        if key.startswith(
            ("spark.kubernetes.driver.node.selector.", "spark.kubernetes.executor.node.selector.")
        ):
            del conf[key]
    executor_cores = int(conf.pop("spark.executor.cores", "1"))
    executor_memory = conf.pop("spark.executor.memory", "2g")
    executor_overhead = conf.pop("spark.executor.memoryOverhead", None)
    dyn: dict[str, Any] = {"enabled": False}
    if submit.cluster is not None:
        plan = spot_aware_allocation(submit.cluster)
        dyn = {
            "enabled": True,
            "initialExecutors": plan.initial_executors,
            "minExecutors": plan.min_executors,
            "maxExecutors": plan.max_executors,
        }
        for key in ("enabled", "minExecutors", "maxExecutors", "initialExecutors"):
            conf.pop(f"spark.dynamicAllocation.{key}", None)
    if archive_uri:
        conf["spark.pyspark.python"] = "./environment/bin/python"
        conf["spark.pyspark.driver.python"] = "./environment/bin/python"
    labels = {"app.kubernetes.io/name": "lakehouse", "app.kubernetes.io/part-of": "lakehouse"}
    driver: dict[str, Any] = {
        "cores": k8s.driver_cores,
        "memory": k8s.driver_memory,
        "serviceAccount": k8s.service_account,
        "nodeSelector": driver_selector,
        "labels": dict(labels),
        "env": [{"name": "AWS_REGION", "value": k8s.region}],
    }
    executor: dict[str, Any] = {
        "cores": executor_cores,
        "memory": executor_memory,
        "serviceAccount": k8s.service_account,
        "nodeSelector": executor_selector,
        "labels": dict(labels),
        "env": [{"name": "AWS_REGION", "value": k8s.region}],
    }
    if executor_overhead:
        executor["memoryOverhead"] = executor_overhead
    if toleration:
        executor["tolerations"] = [toleration]
    if not dyn["enabled"]:
        executor["instances"] = 2
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
        "dynamicAllocation": dyn,
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
    where = ".".join(path) or "<top>"
    if isinstance(schema, dict):
        if not isinstance(value, Mapping):
            errors.append(f"{where}: must be an object; found {type(value).__name__}")
            return
        for key in _REQUIRED.get(path, ()):
            if key not in value:
                errors.append(f"{where}: required field {key!r} is missing")
        for key, item in value.items():
            if key not in schema:
                errors.append(
                    f"{where}: unknown field {key!r} (not in spark-operator v1beta2); "
                    f"allowed: [{', '.join(sorted(schema)) if len(schema) < 8 else '...'}]"
                )
                continue
            _check(item, schema[key], (*path, key), errors)
        return
    if isinstance(schema, list):
        if not isinstance(value, list):
            errors.append(f"{where}: must be a list; found {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(item, schema[0], (*path, str(i)), errors)
        return
    ok = {
        _STR: isinstance(value, str),
        _INT: isinstance(value, int) and not isinstance(value, bool),
        _BOOL: isinstance(value, bool),
        _MAP: isinstance(value, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()),
        _STRLIST: isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[schema]
    if not ok:
        errors.append(f"{where}: must be {schema}; found {value!r}")
        return
    if path in _ENUMS and value not in _ENUMS[path]:
        errors.append(f"{where}: must be one of {list(_ENUMS[path])}; found {value!r}")
    if path in _MINIMUM and value < _MINIMUM[path]:
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
    import yaml

    return yaml.safe_dump(dict(manifest), sort_keys=False, default_flow_style=False)


# --------------------------------------------------------------------------- CLI


def _cmd_manifest(args: argparse.Namespace) -> int:
    from lakehouse.config import load_config
    from lakehouse.deploy.artifacts import check_target, load_manifest
    from lakehouse.deploy.spark_submit import _dist, _job_args, _parse_conf

    settings = load_config(args.env or "kubernetes", conf_dir=args.conf_dir)
    if settings.submit is None:
        raise ManifestError(f"conf/env/{settings.env}.yaml: no submit section")
    k8s = settings.submit.kubernetes
    artifacts = load_manifest(_dist(args, settings))
    check_target(artifacts.manifest, spark_version=k8s.spark_version)
    base = (args.artifacts_uri or k8s.artifacts_uri).rstrip("/")
    if not base or base.endswith(":/"):
        raise ManifestError(
            "no artifacts URI: set submit.kubernetes.artifacts_uri or pass --artifacts-uri"
        )
    version = artifacts.manifest["project"]["version"]
    base = f"{base}/{version}"
    archive = f"{base}/{artifacts.env_archive.name}" if artifacts.env_archive else None
    conf_archive = f"{base}/{artifacts.conf_archive.name}" if artifacts.conf_archive else None
    manifest = spark_application(
        settings,
        name=args.name,
        entry_uri=f"{base}/{artifacts.entry.name}",
        archive_uri=archive,
        conf_archive_uri=conf_archive,
        job_args=_job_args(args.job_args),
        conf_overrides=_parse_conf(args.conf),
    )
    text = to_yaml(manifest)
    if args.output and args.output != "-":
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(
            f"wrote {args.output}; upload {artifacts.dist_dir}/* to {base}/ then "
            f"kubectl apply -f {args.output}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return 0


def register_cli(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``k8s-manifest`` to ``lakehouse submit``."""
    p = sub.add_parser("k8s-manifest", help="write a spark-operator SparkApplication manifest")
    add_common(p)
    p.add_argument("--name", default="lakehouse")
    p.add_argument("--artifacts-uri", default=None)
    p.add_argument("--output", "-o", default="-")
    p.add_argument("job_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=_cmd_manifest)
