#!/usr/bin/env bash
# One submit entry for every target: local, standalone, yarn, k8s (native spark-submit).
#
#   ./spark-submit.sh <target> [--env ENV] [--master URL] [--deploy-mode client|cluster]
#                     [--conf KEY=VALUE]... [--dist DIR] [--app FILE] [--dry-run] [-- JOB ARGS...]
#
# Reads conf/env/<env>.yaml (default env: the target's name; k8s -> kubernetes), merges the
# Spark configuration (env conf < spot-aware allocation < submit.conf < --conf), prints the
# exact spark-submit command with secrets redacted, then runs it. --dry-run prints the command
# and the effective configuration (JSON) without running anything.
# Build the artifacts first: scripts/build-artifacts.sh
# AWS targets: emr (a step), emr-serverless, emr-eks (a job run on an EMR on EKS virtual
# cluster) upload the build, start the run and wait: ./spark-submit.sh emr-eks --env emr
# [--timeout S] [--no-wait] [--dry-run] [-- JOB ARGS...]; emr-serverless-cancel and
# emr-eks-cancel take a job run id. spark-operator manifests: `lakehouse submit --help`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
target="$1"
case "$target" in
  local|standalone|yarn|k8s) ;;
  emr|emr-serverless|emr-eks|emr-serverless-cancel|emr-eks-cancel) ;;
  *) echo "error: unknown target '$target'; allowed: local, standalone, yarn, k8s, emr," \
       "emr-serverless, emr-eks (and emr-serverless-cancel, emr-eks-cancel)" >&2; exit 2 ;;
esac

py="${LAKEHOUSE_PYTHON:-}"
if [[ -z "$py" ]]; then
  for candidate in "$here/.venv/bin/python" "$(command -v python3 || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then py="$candidate"; break; fi
  done
fi
[[ -n "$py" ]] || { echo "error: no python found; set LAKEHOUSE_PYTHON" >&2; exit 2; }

# The library comes from the checkout (lib/) unless it is installed.
export PYTHONPATH="$here/lib${PYTHONPATH:+:$PYTHONPATH}"
export LAKEHOUSE_CONF_DIR="${LAKEHOUSE_CONF_DIR:-$here/conf}"
cd "$here"
exec "$py" -m lakehouse.cli.submit "$@"
