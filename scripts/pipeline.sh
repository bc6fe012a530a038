#!/usr/bin/env bash
# One command: set up, generate sample landing data (first run), run bronze -> silver -> gold
# locally and print the run report. Extra arguments go to `lakehouse pipeline`
# (e.g. --orders 1000000 --regenerate).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/lakehouse" --env "${LAKEHOUSE_ENV:-local}" pipeline "$@"
