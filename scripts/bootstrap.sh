#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment. Idempotent and fast when nothing
# changed: packages are reinstalled only when pyproject.toml changes; pip's wheel cache and
# Spark's Ivy cache (Delta jars, ${LAKEHOUSE_CACHE:-~/.cache/lakehouse}/ivy) persist.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LAKEHOUSE_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "bootstrap: Python >= 3.11 is required (found $("$PY" --version 2>&1))" >&2
  exit 1
fi
if ! command -v java >/dev/null 2>&1; then
  echo "bootstrap: Java 17 is required by Spark (java not found on PATH)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.lakehouse-installed"
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "bootstrap: installing Python packages (pyspark, delta-spark, dev tools)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev,bench]"
  echo "$WANT" > "$STAMP"
fi
