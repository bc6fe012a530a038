"""``lakehouse submit``: package once, submit anywhere.

Every command parses its arguments, calls :mod:`lakehouse.deploy` and prints the result;
``spark-submit.sh`` and ``scripts/build-artifacts.sh`` run this module
(``python -m lakehouse.cli.submit``).

``build``                       wheel, env archive, entry file, resolved configs, manifest
``local|standalone|yarn|k8s``   print the ``spark-submit`` command (secrets redacted), run it
``plan``                        print the spot-aware allocation of an environment
``tf-env``                      ``terraform output -json`` (stdin) -> ``export TF_<name>=...``
``emr``                         upload the build, add an EMR step, wait, print stderr on failure
``emr-serverless``              upload the build, start an EMR Serverless job run, wait
``emr-serverless-cancel``       cancel an EMR Serverless job run
``emr-eks``                     upload the build, start an EMR on EKS job run, wait
``emr-eks-cancel``              cancel an EMR on EKS job run
``k8s-manifest``                write a spark-operator ``SparkApplication`` manifest

Exit codes: 0 done, 1 the job (step, job run) failed or timed out, 2 the request was refused
(configuration, build, arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lakehouse.config import Settings, load_config
from lakehouse.config.models import EmrSubmitSettings
from lakehouse.deploy.allocation import spot_aware_allocation
from lakehouse.deploy.artifacts import (
    DEFAULT_EXCLUDES,
    ArtifactPaths,
    build_artifacts,
    expected_artifacts,
    load_manifest,
    manifest_summary,
)
from lakehouse.deploy.emr import (
    AwsClients,
    EmrError,
    StepFailedError,
    StepTimeoutError,
    add_spark_step,
    aws_clients,
    emr_settings,
    emr_spark_submit_args,
    require_setting,
    stage_artifacts,
    wait_for_step,
)
from lakehouse.deploy.emr_eks import (
    cancel_eks_job_run,
    eks_submit_parameters,
    start_eks_job,
    wait_for_eks_job_run,
)
from lakehouse.deploy.emr_serverless import (
    cancel_job_run,
    serverless_submit_parameters,
    start_serverless_job,
    wait_for_job_run,
)
from lakehouse.deploy.kubernetes import artifact_uris, spark_application, to_yaml
from lakehouse.deploy.spark_submit import (
    SPARK_SUBMIT_TARGETS,
    SubmitError,
    build_submit_command,
    missing_artifacts,
)
from lakehouse.deploy.terraform import shell_exports
from lakehouse.redaction import redact_argv

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]
Subcommands = argparse._SubParsersAction  # what add_subparsers() returns

#: The environment a spark-submit target reads when ``--env`` is not given.
_DEFAULT_ENV = {"local": "local", "standalone": "standalone", "yarn": "yarn", "k8s": "kubernetes"}

# --------------------------------------------------------------------------- argument helpers


def _repo_root() -> Path:
    here = Path.cwd()
    if (here / "pyproject.toml").is_file():
        return here
    return Path(__file__).resolve().parents[3]


def _settings(args: argparse.Namespace, default_env: str) -> Settings:
    return load_config(args.env or default_env, conf_dir=args.conf_dir)


def _dist_dir(args: argparse.Namespace, settings: Settings) -> Path:
    """``--dist``, else ``submit.dist_dir``; relative to the repository."""
    path = Path(args.dist or (settings.submit.dist_dir if settings.submit else "dist"))
    return path if path.is_absolute() else _repo_root() / path


def _job_args(raw: Sequence[str]) -> list[str]:
    """The job's arguments: what follows ``--``."""
    return list(raw[1:]) if raw and raw[0] == "--" else list(raw)


def _conf_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``--conf key=value`` flags as a mapping."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SubmitError(f"--conf expects key=value; found {pair!r}")
        out[key] = value
    return out


# --------------------------------------------------------------------------- commands


def _build(args: argparse.Namespace) -> int:
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


def _spark_submit(args: argparse.Namespace) -> int:
    settings = _settings(args, _DEFAULT_ENV[args.command])
    artifacts = expected_artifacts(_repo_root(), _dist_dir(args, settings))
    cmd = build_submit_command(
        settings,
        target=args.command,
        artifacts=artifacts,
        job_args=_job_args(args.job_args),
        app=args.app,
        master=args.master,
        deploy_mode=args.deploy_mode,
        conf_overrides=_conf_pairs(args.conf),
    )
    print("+ " + cmd.redacted(), file=sys.stderr, flush=True)
    if args.dry_run:
        shown = {"argv": redact_argv(cmd.argv), "conf": cmd.redacted_conf(), "env": cmd.env}
        print(json.dumps(shown, indent=2))
        return 0
    for path in missing_artifacts(artifacts, target=args.command):
        raise SubmitError(f"{path}: artifact missing; run scripts/build-artifacts.sh first")
    sys.stdout.flush()
    os.execvpe(cmd.argv[0], cmd.argv, {**os.environ, **cmd.env})  # noqa: S606 - replaces this process
    return 0  # pragma: no cover


def _plan(args: argparse.Namespace) -> int:
    settings = load_config(args.env, conf_dir=args.conf_dir)
    if settings.submit is None or settings.submit.cluster is None:
        raise SubmitError(f"conf/env/{args.env}.yaml: submit.cluster is not set")
    print(spot_aware_allocation(settings.submit.cluster).model_dump_json(indent=2))
    return 0


def _tf_env(args: argparse.Namespace) -> int:
    for line in shell_exports(json.load(sys.stdin), args.prefix):
        print(line)
    return 0


def _stage(args: argparse.Namespace) -> tuple[Settings, AwsClients, ArtifactPaths]:
    """The EMR environment, its AWS clients and the build uploaded to ``artifacts_uri``."""
    settings = _settings(args, "emr")
    emr_settings(settings)  # no submit section: refuse before reading the build
    artifacts = load_manifest(_dist_dir(args, settings))
    clients = aws_clients(settings)
    return settings, clients, stage_artifacts(clients.s3, settings, artifacts)


def _emr(args: argparse.Namespace) -> int:
    settings, clients, uris = _stage(args)
    cfg = emr_settings(settings)
    cluster_id = require_setting(cfg.cluster_id, "cluster_id", settings)
    step_args = emr_spark_submit_args(
        settings,
        entry_uri=uris.entry,
        archive_uri=uris.env_archive,
        conf_archive_uri=uris.conf_archive,
        job_args=_job_args(args.job_args),
        conf_overrides=_conf_pairs(args.conf),
    )
    print("+ command-runner.jar " + " ".join(redact_argv(step_args)), flush=True)
    if args.dry_run:
        return 0
    step_id = add_spark_step(
        clients.emr,
        cluster_id=cluster_id,
        name=args.name,
        spark_submit_args=step_args,
        action_on_failure=cfg.action_on_failure,
    )
    print(f"added step {step_id} to {cluster_id}", flush=True)
    return 0 if args.no_wait else _wait_for_step(args, clients, cfg, cluster_id, step_id)


def _wait_for_step(
    args: argparse.Namespace,
    clients: AwsClients,
    cfg: EmrSubmitSettings,
    cluster_id: str,
    step_id: str,
) -> int:
    try:
        wait_for_step(
            clients.emr,
            clients.s3,
            cluster_id=cluster_id,
            step_id=step_id,
            timeout_s=args.timeout or cfg.step_timeout_s,
            poll_s=args.poll or cfg.poll_s,
            log_uri=cfg.log_uri or None,
            log_wait_s=args.log_wait,
        )
    except StepFailedError as exc:
        _print_step_failure(exc)
        return 1
    except StepTimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"step {step_id} COMPLETED")
    return 0


def _print_step_failure(exc: StepFailedError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    if exc.stderr is None:
        print("(step stderr not found in the log location yet)", file=sys.stderr)
        return
    print("----- step stderr -----", file=sys.stderr)
    print(exc.stderr, file=sys.stderr)


def _emr_serverless(args: argparse.Namespace) -> int:
    return _emr_job_run(args, eks=False)


def _emr_eks(args: argparse.Namespace) -> int:
    return _emr_job_run(args, eks=True)


def _emr_job_run(args: argparse.Namespace, *, eks: bool) -> int:
    """Upload the build, then start an EMR Serverless (or, with ``eks``, an EMR on EKS) job
    run and wait for it; ``--dry-run`` prints the ``sparkSubmitParameters`` instead."""
    settings, clients, uris = _stage(args)
    cfg = emr_settings(settings)
    archive, conf_archive, overrides = uris.env_archive, uris.conf_archive, _conf_pairs(args.conf)
    if args.dry_run:
        parameters = eks_submit_parameters if eks else serverless_submit_parameters
        print(
            parameters(
                settings,
                archive_uri=archive,
                conf_archive_uri=conf_archive,
                conf_overrides=overrides,
            )
        )
        return 0
    client = clients.emr_containers if eks else clients.emr_serverless
    start = start_eks_job if eks else start_serverless_job
    job_run_id = start(
        client,
        settings,
        entry_uri=uris.entry,
        archive_uri=archive,
        conf_archive_uri=conf_archive,
        job_args=_job_args(args.job_args),
        name=args.name,
        conf_overrides=overrides,
    )
    print(f"started {'EMR on EKS ' if eks else ''}job run {job_run_id}", flush=True)
    if args.no_wait:
        return 0
    timeout_s, poll_s = args.timeout or cfg.step_timeout_s, args.poll or cfg.poll_s
    try:
        if eks:
            wait_for_eks_job_run(
                client,
                virtual_cluster_id=cfg.eks_virtual_cluster_id,
                job_run_id=job_run_id,
                timeout_s=timeout_s,
                poll_s=poll_s,
                log_uri=cfg.log_uri,
            )
        else:
            wait_for_job_run(
                client,
                application_id=cfg.serverless_application_id,
                job_run_id=job_run_id,
                timeout_s=timeout_s,
                poll_s=poll_s,
            )
    except EmrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _emr_serverless_cancel(args: argparse.Namespace) -> int:
    settings = _settings(args, "emr")
    cfg = emr_settings(settings)
    cancel_job_run(
        aws_clients(settings).emr_serverless,
        application_id=require_setting(
            cfg.serverless_application_id, "serverless_application_id", settings
        ),
        job_run_id=args.job_run_id,
    )
    print(f"cancelled job run {args.job_run_id}")
    return 0


def _emr_eks_cancel(args: argparse.Namespace) -> int:
    settings = _settings(args, "emr")
    cfg = emr_settings(settings)
    cancel_eks_job_run(
        aws_clients(settings).emr_containers,
        virtual_cluster_id=require_setting(
            cfg.eks_virtual_cluster_id, "eks_virtual_cluster_id", settings
        ),
        job_run_id=args.job_run_id,
    )
    print(f"cancelled EMR on EKS job run {args.job_run_id}")
    return 0


def _k8s_manifest(args: argparse.Namespace) -> int:
    settings = _settings(args, "kubernetes")
    artifacts = load_manifest(_dist_dir(args, settings))
    uris = artifact_uris(settings, artifacts, artifacts_uri=args.artifacts_uri)
    manifest = spark_application(
        settings,
        name=args.name,
        entry_uri=uris.entry,
        archive_uri=uris.env_archive,
        conf_archive_uri=uris.conf_archive,
        job_args=_job_args(args.job_args),
        conf_overrides=_conf_pairs(args.conf),
    )
    text = to_yaml(manifest)
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return 0
    Path(args.output).write_text(text, encoding="utf-8")
    base = uris.entry.rsplit("/", 1)[0]
    print(
        f"wrote {args.output}; upload {artifacts.dist_dir}/* to {base}/ then "
        f"kubectl apply -f {args.output}",
        file=sys.stderr,
    )
    return 0


# --------------------------------------------------------------------------- parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default=None, help="environment (conf/env/<env>.yaml)")
    parser.add_argument("--conf-dir", default=None, help="configuration directory")
    parser.add_argument("--dist", default=None, help="artifact directory (default submit.dist_dir)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--dry-run", action="store_true", help="print, do not run")


def _add_build(sub: Subcommands) -> None:
    build = sub.add_parser("build", help="build wheel, env archive, entry, configs, manifest")
    build.add_argument("--out", default="dist")
    build.add_argument("--env", action="append", default=[], dest="envs")
    build.add_argument("--no-env-archive", action="store_true")
    build.add_argument(
        "--include-pyspark",
        action="store_true",
        help="pack pyspark/py4j too (~400 MB; only for clusters without Spark's Python)",
    )
    build.set_defaults(handler=_build)


def _add_spark_submit_targets(sub: Subcommands) -> None:
    for target in SPARK_SUBMIT_TARGETS:
        p = sub.add_parser(target, help=f"spark-submit to {target}")
        _add_common(p)
        p.add_argument("--master", default=None)
        p.add_argument("--deploy-mode", choices=["client", "cluster"], default=None)
        p.add_argument("--app", default=None, help="application file (default: the entry file)")
        p.add_argument("job_args", nargs=argparse.REMAINDER, help="-- then the job's arguments")
        p.set_defaults(handler=_spark_submit)


def _add_plan_and_tf_env(sub: Subcommands) -> None:
    plan = sub.add_parser("plan", help="print the spot-aware allocation of an environment")
    plan.add_argument("--env", required=True)
    plan.add_argument("--conf-dir", default=None)
    plan.set_defaults(handler=_plan)
    tf = sub.add_parser("tf-env", help="terraform output -json (stdin) -> export TF_<name>=...")
    tf.add_argument("--prefix", default="TF_")
    tf.set_defaults(handler=_tf_env)


def _add_emr(sub: Subcommands) -> None:
    for name, handler, help_text in (
        ("emr", _emr, "upload artifacts, add an EMR step, wait, print stderr on failure"),
        ("emr-serverless", _emr_serverless, "upload artifacts, start an EMR Serverless run"),
        ("emr-eks", _emr_eks, "upload artifacts, start an EMR on EKS job run"),
    ):
        p = sub.add_parser(name, help=help_text)
        _add_common(p)
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
    for name, handler, help_text in (
        ("emr-serverless-cancel", _emr_serverless_cancel, "cancel an EMR Serverless job run"),
        ("emr-eks-cancel", _emr_eks_cancel, "cancel an EMR on EKS job run"),
    ):
        cancel = sub.add_parser(name, help=help_text)
        cancel.add_argument("job_run_id")
        cancel.add_argument("--env", default=None)
        cancel.add_argument("--conf-dir", default=None)
        cancel.set_defaults(handler=handler)


def _add_k8s_manifest(sub: Subcommands) -> None:
    p = sub.add_parser("k8s-manifest", help="write a spark-operator SparkApplication manifest")
    _add_common(p)
    p.add_argument("--name", default="lakehouse")
    p.add_argument("--artifacts-uri", default=None)
    p.add_argument("--output", "-o", default="-")
    p.add_argument("job_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=_k8s_manifest)


def build_parser() -> argparse.ArgumentParser:
    """The ``lakehouse submit`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="lakehouse submit", description="Package once, submit anywhere."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_build, _add_spark_submit_targets, _add_plan_and_tf_env, _add_emr):
        add(sub)
    _add_k8s_manifest(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of ``spark-submit.sh`` and ``lakehouse submit``; returns the exit status."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
