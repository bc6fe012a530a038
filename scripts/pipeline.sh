#!/usr/bin/env bash
# One command: set up, generate sample landing data (first run only), run every declared job
# (bronze -> silver -> gold -> maintain) locally and print the run report.
# Options: --orders N (sample size when generating), --regenerate (delete landing files, tables
# and reports under the data root, then generate again). LAKEHOUSE_ENV picks the environment (default local).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
ENV_NAME="${LAKEHOUSE_ENV:-local}"
gen_args=(--if-missing)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --orders) gen_args+=(--orders "$2"); shift 2 ;;
    --regenerate) gen_args=(--fresh "${gen_args[@]:1}"); shift ;;
    *) echo "pipeline: unknown option '$1' (allowed: --orders N, --regenerate)" >&2; exit 2 ;;
  esac
done
"$ROOT/.venv/bin/python" -m harness generate --env "$ENV_NAME" "${gen_args[@]}"
exec "$ROOT/.venv/bin/lakehouse" --env "$ENV_NAME" run all
