#!/usr/bin/env bash
# Build the versioned artifacts into dist/ (or --out DIR): reproducible wheel, self-contained
# env archive (without pyspark/py4j: the cluster provides them), lakehouse_entry.py,
# resolved config-<env>.json per --env, the same as a conf/ archive, and manifest.json
# (Spark/Delta/Python targets). Runs `python -m lakehouse.cli.submit build`.
#
#   scripts/build-artifacts.sh [--out dist] [--env local --env emr ...] [--no-env-archive]
#                              [--include-pyspark]
# SOURCE_DATE_EPOCH (default 1980-01-01) fixes every timestamp: two builds give the same wheel.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${LAKEHOUSE_PYTHON:-}"
if [[ -z "$py" ]]; then
  for candidate in "$here/.venv/bin/python" "$(command -v python3 || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then py="$candidate"; break; fi
  done
fi
export PYTHONPATH="$here/lib${PYTHONPATH:+:$PYTHONPATH}"
cd "$here"
exec "$py" -m lakehouse.cli.submit build "$@"
