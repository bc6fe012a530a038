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
#                                             the HTML report's browser test), and alongside
#                                             it, at low CPU priority, the same library tests
#                                             on pyspark 3.5 / delta 3.3 (EMR 7.x) and the
#                                             offline Terraform checks (fmt, validate, test,
#                                             checkov)
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
if ! $all; then
  echo "== pytest ${targets[*]:-} $*"; exec "$VENV/bin/python" -m pytest "${targets[@]}" "$@"
fi
"$ROOT/scripts/install-browser.sh"  # the HTML report's browser test
# The compatibility target and the Terraform checks run alongside the primary pytest run, at
# the lowest CPU priority: that run leaves about a quarter of the two cores idle (it waits on
# Delta's log and on processes it starts), and they share no files with it (the compat run has
# its own venv and Ivy cache). Their output is printed when they end; every part runs to its
# end and any failure fails the gate.
logs="$(mktemp -d)"
trap 'kill 0' INT TERM
nice -n 19 bash "$ROOT/scripts/test-compat.sh" >"$logs/compat.log" 2>&1 &
compat=$!
nice -n 19 bash "$ROOT/scripts/terraform-check.sh" >"$logs/terraform.log" 2>&1 &
terraform=$!
failed=()
echo "== pytest ${targets[*]:-} $*"; "$VENV/bin/python" -m pytest "${targets[@]}" "$@" || failed+=(pytest)
echo "== compatibility target: pyspark 3.5 + delta-spark 3.3 (EMR 7.x), run alongside"
wait "$compat" || failed+=(compat)
cat "$logs/compat.log"
echo "== terraform (fmt, validate, test, checkov), run alongside"
wait "$terraform" || failed+=(terraform)
cat "$logs/terraform.log"
rm -rf "$logs"
if ((${#failed[@]})); then echo "== FAILED: ${failed[*]}" >&2; exit 1; fi
echo "== all passed"
