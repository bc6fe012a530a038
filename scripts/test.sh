#!/usr/bin/env bash
# One command: set up, then lint (ruff), types (mypy), the test suite (pytest, including the
# slow cluster tests and fault drills), the same library tests on pyspark 3.5 / delta 3.3
# (EMR 7.x), and the offline Terraform checks (fmt, validate, test, checkov).
# Extra arguments go to pytest (e.g. -k scd2, -m "not slow").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
VENV="${LAKEHOUSE_VENV:-$ROOT/.venv}"
echo "== ruff"; "$VENV/bin/ruff" check lib jobs harness tests benchmarks
"$VENV/bin/ruff" format --check lib jobs harness tests benchmarks
echo "== mypy"; "$VENV/bin/mypy"
echo "== pytest"; "$VENV/bin/python" -m pytest "$@"
echo "== compatibility target: pyspark 3.5 + delta-spark 3.3 (EMR 7.x)"; bash "$ROOT/scripts/test-compat.sh"
echo "== terraform (fmt, validate, test, checkov)"; bash "$ROOT/scripts/terraform-check.sh"
