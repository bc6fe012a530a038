"""One submit entry for every target: build the ``spark-submit`` command from configuration.

``spark-submit.sh <target> [options] [-- job args]`` calls :func:`main`, which reads the
environment's YAML (``submit:`` section), merges the Spark configuration in this order
(later wins):

1. ``spark.conf`` of the environment,
2. the spot-aware allocation computed from ``submit.cluster``
   (:func:`lakehouse.deploy.allocation.spot_aware_allocation`),
3. ``submit.conf``,
4. ``--conf key=value`` on the command line,

adds Delta's SQL extension/catalog, the redaction regex, Delta's jars (when the platform
does not provide them) and the packed environment (``spark.archives=<env>.tar.gz#environment``
with ``spark.pyspark.python=./environment/bin/python``), prints the exact command with
secrets redacted, and runs it (or only prints it and the effective configuration with
``--dry-run``).

Examples
--------
>>> redact_value("spark.hadoop.fs.s3a.secret.key", "abc")
'*********(redacted)'
>>> redact_value("spark.archives", "s3://user:pw@host/env.tar.gz#environment")
's3://*********(redacted)@host/env.tar.gz#environment'
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse.config import Settings, load_config
from lakehouse.spark.session import DELTA_CONF, REDACTION_REGEX, cache_dir, delta_maven_coordinate

__all__ = [
    "SPARK_SUBMIT_TARGETS",
    "SubmitCommand",
    "SubmitError",
    "build_submit_command",
    "effective_conf",
    "expected_artifacts",
    "find_spark_submit",
    "main",
    "redact_argv",
    "redact_value",
]

SPARK_SUBMIT_TARGETS = ("local", "standalone", "yarn", "k8s")
REDACTED = "*********(redacted)"
_SECRET_KEY = re.compile(REDACTION_REGEX)
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_AWS_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class SubmitError(ValueError):
    """The submit request is inconsistent with the configuration or the build."""


def redact_value(key: str, value: str) -> str:
    """``value`` with secrets hidden: whole value for secret-looking keys, URL credentials."""
    if _SECRET_KEY.search(key):
        return REDACTED
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", value)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A copy of a ``spark-submit`` argv with ``--conf`` secrets and URL credentials hidden."""
    out: list[str] = []
    for arg in argv:
        if "=" in arg and not arg.startswith("-"):
            key, _, value = arg.partition("=")
            out.append(f"{key}={redact_value(key, value)}")
        else:
            out.append(redact_value("", arg))
    return out


@dataclass(frozen=True)
class ArtifactPaths:
    """Where the build's files are (local paths or URIs) as seen by ``spark-submit``."""

    wheel: str
    entry: str
    env_archive: str | None
    conf_archive: str | None = None
    manifest: dict[str, object] = field(default_factory=dict)


def expected_artifacts(
    project_dir: str | os.PathLike[str], dist_dir: str | os.PathLike[str]
) -> ArtifactPaths:
    """The build's artifact paths: from ``dist/manifest.json`` or, before a build, by name."""
    from lakehouse.deploy.artifacts import BuildError, load_manifest

    dist = Path(dist_dir)
    try:
        built = load_manifest(dist)
        return ArtifactPaths(
            wheel=str(built.wheel),
            entry=str(built.entry),
            env_archive=str(built.env_archive) if built.env_archive else None,
            conf_archive=str(built.conf_archive) if built.conf_archive else None,
            manifest=built.manifest,
        )
    except BuildError:
        pyproject = tomllib.loads((Path(project_dir) / "pyproject.toml").read_text("utf-8"))
        version = pyproject["project"]["version"]
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        return ArtifactPaths(
            wheel=str(dist / f"lakehouse_jobs-{version}-py3-none-any.whl"),
            entry=str(dist / "lakehouse_entry.py"),
            env_archive=str(dist / f"lakehouse-env-{version}-py{py}.tar.gz"),
            conf_archive=str(dist / f"lakehouse-conf-{version}.tar.gz"),
        )


def _rebase(path: str | None, base_uri: str | None) -> str | None:
    if path is None or not base_uri:
        return path
    return base_uri.rstrip("/") + "/" + Path(path).name


def effective_conf(
    settings: Settings,
    *,
    target: str,
    artifacts: ArtifactPaths | None = None,
    deploy_mode: str = "client",
    conf_overrides: Mapping[str, str] | None = None,
    artifact_base_uri: str | None = None,
    provides_delta: bool | None = None,
) -> dict[str, str]:
    """The Spark configuration a submission to ``target`` gets (see module docstring).

    Examples
    --------
    >>> from lakehouse.config import load_config
    >>> conf = effective_conf(load_config("standalone"), target="standalone")
    >>> conf["spark.decommission.enabled"], conf["spark.dynamicAllocation.maxExecutors"]
    ('true', '2')
    """
    from lakehouse.deploy.allocation import spot_aware_allocation

    submit = settings.submit
    conf: dict[str, str] = {"spark.app.name": settings.spark.app_name}
    conf.update(DELTA_CONF)
    conf["spark.redaction.regex"] = REDACTION_REGEX
    conf["spark.sql.redaction.string.regex"] = REDACTION_REGEX
    conf.update(settings.spark.conf)
    if submit is not None and submit.cluster is not None:
        conf.update(spot_aware_allocation(submit.cluster).conf)
    if submit is not None:
        conf.update(submit.conf)
        if submit.driver_memory:
            conf["spark.driver.memory"] = submit.driver_memory
    if provides_delta is None:
        provides_delta = settings.spark.delta_package is None
    if not provides_delta:
        package = settings.spark.delta_package
        conf["spark.jars.packages"] = (
            delta_maven_coordinate() if package in (None, "auto") else str(package)
        )
        conf["spark.jars.ivy"] = settings.spark.ivy_dir or str(cache_dir() / "ivy")
    archives: list[str] = []
    if artifacts is not None and target != "local" and artifacts.env_archive:
        archives.append(f"{_rebase(artifacts.env_archive, artifact_base_uri)}#environment")
        conf["spark.pyspark.python"] = "./environment/bin/python"
        if deploy_mode == "cluster":
            conf["spark.pyspark.driver.python"] = "./environment/bin/python"
    if artifacts is not None and deploy_mode == "cluster" and artifacts.conf_archive:
        # The driver runs on the cluster: it finds the resolved configuration in ./conf.
        archives.append(f"{_rebase(artifacts.conf_archive, artifact_base_uri)}#conf")
    if archives:
        conf["spark.archives"] = ",".join(archives)
    if target == "k8s" and submit is not None:
        k8s = submit.kubernetes
        conf["spark.kubernetes.namespace"] = k8s.namespace
        conf["spark.kubernetes.authenticate.driver.serviceAccountName"] = k8s.service_account
        conf["spark.kubernetes.container.image"] = k8s.image
        if k8s.artifacts_uri:
            conf["spark.kubernetes.file.upload.path"] = k8s.artifacts_uri
    if conf_overrides:
        conf.update(conf_overrides)
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
        return {k: redact_value(k, v) for k, v in sorted(self.conf.items())}


def find_spark_submit() -> str:
    """``$SPARK_HOME/bin/spark-submit``, else the pyspark install's, else ``spark-submit``."""
    home = os.environ.get("SPARK_HOME")
    if home and (Path(home) / "bin" / "spark-submit").is_file():
        return str(Path(home) / "bin" / "spark-submit")
    try:
        import pyspark

        candidate = Path(pyspark.__file__).parent / "bin" / "spark-submit"
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    return "spark-submit"


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
        The build (see :func:`expected_artifacts`).
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
    if target not in SPARK_SUBMIT_TARGETS:
        raise SubmitError(
            f"unknown spark-submit target {target!r}; allowed: {list(SPARK_SUBMIT_TARGETS)}"
        )
    submit = settings.submit
    mode = deploy_mode or (submit.deploy_mode if submit else "client")
    resolved_master = master or (submit.master if submit else None) or settings.spark.master
    if target == "local":
        resolved_master = master or "local[2]"
        mode = "client"
    elif target == "k8s":
        if not (resolved_master or "").startswith("k8s://"):
            api = submit.kubernetes.api_server if submit else "https://kubernetes.default.svc"
            resolved_master = f"k8s://{api}"
    elif target == "yarn":
        resolved_master = "yarn"
    expected_prefix = {"local": "local", "standalone": "spark://", "yarn": "yarn", "k8s": "k8s://"}
    if not (resolved_master or "").startswith(expected_prefix[target]):
        raise SubmitError(
            f"target {target!r} needs a master starting with {expected_prefix[target]!r}; "
            f"found {resolved_master!r} (set submit.master in conf/env/{settings.env}.yaml "
            "or pass --master)"
        )
    if target == "standalone" and mode == "cluster":
        raise SubmitError(
            "Spark standalone does not support cluster deploy mode for Python applications; "
            "required: --deploy-mode client"
        )
    conf = effective_conf(
        settings,
        target=target,
        artifacts=artifacts,
        deploy_mode=mode,
        conf_overrides=conf_overrides,
        artifact_base_uri=artifact_base_uri,
    )
    argv = [spark_submit or find_spark_submit(), "--master", str(resolved_master)]
    argv += ["--deploy-mode", mode, "--name", conf["spark.app.name"]]
    env: dict[str, str] = {}
    if target == "local" or mode == "client":
        # The driver runs here: the project wheel goes on its PYTHONPATH (zipimport).
        argv += ["--py-files", _rebase(artifacts.wheel, artifact_base_uri) or artifacts.wheel]
        # spark.pyspark.python (the executors') would win over the environment for the
        # driver too: name the driver's interpreter explicitly.
        driver_python = os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable)
        conf.setdefault("spark.pyspark.driver.python", driver_python)
        if target == "local":
            conf.setdefault("spark.pyspark.python", driver_python)
    for key in sorted(conf):
        if key == "spark.app.name":
            continue
        argv += ["--conf", f"{key}={conf[key]}"]
    argv.append(app or _rebase(artifacts.entry, artifact_base_uri) or artifacts.entry)
    argv += list(job_args)
    return SubmitCommand(argv=argv, conf=conf, env=env)


# --------------------------------------------------------------------------- CLI


def _parse_conf(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SubmitError(f"--conf expects key=value; found {pair!r}")
        out[key] = value
    return out


def _repo_root() -> Path:
    here = Path.cwd()
    if (here / "pyproject.toml").is_file():
        return here
    return Path(__file__).resolve().parents[3]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default=None, help="environment (conf/env/<env>.yaml)")
    parser.add_argument("--conf-dir", default=None, help="configuration directory")
    parser.add_argument("--dist", default=None, help="artifact directory (default submit.dist_dir)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--dry-run", action="store_true", help="print, do not run")


def build_parser() -> argparse.ArgumentParser:
    """The ``lakehouse submit`` argument parser (also ``python -m lakehouse.deploy.spark_submit``)."""
    parser = argparse.ArgumentParser(
        prog="lakehouse submit", description="Package once, submit anywhere."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build wheel, env archive, entry, configs, manifest")
    build.add_argument("--out", default="dist")
    build.add_argument("--env", action="append", default=[], dest="envs")
    build.add_argument("--no-env-archive", action="store_true")
    build.add_argument(
        "--include-pyspark",
        action="store_true",
        help="pack pyspark/py4j too (~400 MB; only for clusters without Spark's Python)",
    )

    for target in SPARK_SUBMIT_TARGETS:
        p = sub.add_parser(target, help=f"spark-submit to {target}")
        _add_common(p)
        p.add_argument("--master", default=None)
        p.add_argument("--deploy-mode", choices=["client", "cluster"], default=None)
        p.add_argument("--app", default=None, help="application file (default: the entry file)")
        p.add_argument("job_args", nargs=argparse.REMAINDER, help="-- then the job's arguments")

    plan = sub.add_parser("plan", help="print the spot-aware allocation of an environment")
    plan.add_argument("--env", required=True)
    plan.add_argument("--conf-dir", default=None)

    tf = sub.add_parser("tf-env", help="terraform output -json (stdin) -> export TF_<name>=...")
    tf.add_argument("--prefix", default="TF_")

    from lakehouse.deploy import emr
    from lakehouse.deploy import kubernetes as k8s

    emr.register_cli(sub, _add_common)
    k8s.register_cli(sub, _add_common)
    return parser


def _load(args: argparse.Namespace, default_env: str) -> Settings:
    return load_config(args.env or default_env, conf_dir=args.conf_dir)


def _dist(args: argparse.Namespace, settings: Settings) -> Path:
    dist = args.dist or (settings.submit.dist_dir if settings.submit else "dist")
    path = Path(dist)
    return path if path.is_absolute() else _repo_root() / path


def _job_args(raw: Sequence[str]) -> list[str]:
    return list(raw[1:]) if raw and raw[0] == "--" else list(raw)


def _run_spark_submit(args: argparse.Namespace) -> int:
    default_env = {"k8s": "kubernetes"}.get(args.command, args.command)
    settings = _load(args, default_env)
    artifacts = expected_artifacts(_repo_root(), _dist(args, settings))
    cmd = build_submit_command(
        settings,
        target=args.command,
        artifacts=artifacts,
        job_args=_job_args(args.job_args),
        app=args.app,
        master=args.master,
        deploy_mode=args.deploy_mode,
        conf_overrides=_parse_conf(args.conf),
    )
    print("+ " + cmd.redacted(), file=sys.stderr, flush=True)
    if args.dry_run:
        print(
            json.dumps(
                {"argv": redact_argv(cmd.argv), "conf": cmd.redacted_conf(), "env": cmd.env},
                indent=2,
            )
        )
        return 0
    for path in (
        artifacts.wheel,
        *([artifacts.env_archive] if args.command != "local" and artifacts.env_archive else []),
    ):
        if "://" not in path and not Path(path).is_file():
            raise SubmitError(f"{path}: artifact missing; run scripts/build-artifacts.sh first")
    env = {**os.environ, **cmd.env}
    sys.stdout.flush()
    os.execvpe(cmd.argv[0], cmd.argv, env)  # noqa: S606 - replaces this process
    return 0  # pragma: no cover


def _tf_env(prefix: str) -> int:
    outputs = json.load(sys.stdin)
    for name, item in sorted(outputs.items()):
        value = item.get("value") if isinstance(item, dict) else item
        if isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"))
        if item.get("sensitive") if isinstance(item, dict) else False:
            continue  # never export sensitive outputs into a shell
        print(f"export {prefix}{name}={shlex.quote(str(value))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of ``spark-submit.sh`` and ``lakehouse submit``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        if args.command in SPARK_SUBMIT_TARGETS:
            return _run_spark_submit(args)
        if args.command == "build":
            from lakehouse.deploy.artifacts import (
                DEFAULT_EXCLUDES,
                build_artifacts,
                manifest_summary,
            )

            out = Path(args.out)
            artifacts = build_artifacts(
                _repo_root(),
                out if out.is_absolute() else _repo_root() / out,
                envs=args.envs or ["local"],
                env_archive=not args.no_env_archive,
                exclude=() if args.include_pyspark else DEFAULT_EXCLUDES,
            )
            print(manifest_summary(artifacts))
            return 0
        if args.command == "plan":
            from lakehouse.deploy.allocation import spot_aware_allocation

            settings = load_config(args.env, conf_dir=args.conf_dir)
            if settings.submit is None or settings.submit.cluster is None:
                raise SubmitError(f"conf/env/{args.env}.yaml: submit.cluster is not set")
            print(spot_aware_allocation(settings.submit.cluster).model_dump_json(indent=2))
            return 0
        if args.command == "tf-env":
            return _tf_env(args.prefix)
        handler = getattr(args, "handler", None)
        if handler is None:  # pragma: no cover - argparse requires a command
            parser.error(f"unknown command {args.command!r}")
        status: int = handler(args)
        return status
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
