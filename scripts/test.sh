#!/usr/bin/env bash
# The tests, set-up included. Two tiers:
#
#   ./scripts/test.sh [pytest args...]        fast loop: ruff, mypy, tests/unit,
#                                             tests/integration and the docstring examples of
#                                             lib/lakehouse and jobs, less the tests marked slow
#                                             or cluster (they start processes or clusters:
#                                             pipeline end to end, tutorial, artifact builds)
#   ./scripts/test.sh --all [pytest args...]  full gate (CI): the fast loop's checks, then every
#                                             pytest tier (unit, integration, drills, cluster
#                                             tests; headless Chromium is installed first for
#                                             the HTML report's browser test), the same library
#                                             tests on pyspark 3.5 /
#                                             delta 3.3 (EMR 7.x), and the offline Terraform
#                                             checks (fmt, validate, test, checkov)
#
# Extra arguments go to pytest (e.g. -k scd2, or a test file: then only that file runs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
all=false
if [[ "${1:-}" == "--all" ]]; then all=true; shift; fi
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
VENV="${LAKEHOUSE_VENV:-$ROOT/.venv}"
paths=(lib jobs harness tests benchmarks)
echo "== ruff"; "$VENV/bin/ruff" check "${paths[@]}"
"$VENV/bin/ruff" format --check "${paths[@]}"
echo "== mypy"; "$VENV/bin/mypy"
# The tier's folders, unless the arguments name test files or folders themselves.
if $all; then targets=(); else targets=(tests/unit tests/integration lib/lakehouse jobs -m "not slow and not cluster"); fi
for arg in "$@"; do if [[ "$arg" == tests* ]]; then targets=(); break; fi; done
if $all; then "$ROOT/scripts/install-browser.sh"; fi  # the HTML report's browser test
echo "== pytest ${targets[*]:-} $*"; "$VENV/bin/python" -m pytest "${targets[@]}" "$@"
if $all; then
  echo "== compatibility target: pyspark 3.5 + delta-spark 3.3 (EMR 7.x)"; bash "$ROOT/scripts/test-compat.sh"
  echo "== terraform (fmt, validate, test, checkov)"; bash "$ROOT/scripts/terraform-check.sh"
fi
