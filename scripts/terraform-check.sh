#!/usr/bin/env bash
# Offline Terraform checks for terraform/: fmt, init+validate (real provider
# schemas), terraform test (mock providers) and checkov.
#
# Providers come from a filesystem mirror under the cache dir, never from the
# Terraform registry (unreachable on CI machines):
#   * hashicorp/aws    : linked from the machine's provider mirror (/opt/tf-plugins,
#                        override with TF_AWS_PROVIDER_MIRROR). Newer aws releases
#                        are not served as Go modules, so it cannot be built here.
#   * hashicorp/helm, hashicorp/kubernetes : built from their Go modules through the
#                        Go module proxy, using the pinned go.mod/go.sum under
#                        scripts/terraform-providers/<name>/.
# Everything built is cached in ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/terraform,
# so a second run only re-runs the checks.
#
# Usage: bash scripts/terraform-check.sh      (exit code != 0 on any failure)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="$ROOT/terraform"
CACHE="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/terraform"

TF_VERSION="1.11.4"
AWS_VERSION="5.100.0"
HELM_VERSION="1.3.2"
KUBERNETES_VERSION="1.13.4"
CHECKOV_VERSION="3.3.30"
AWS_SOURCE_MIRROR="${TF_AWS_PROVIDER_MIRROR:-/opt/tf-plugins}"

MIRROR="$CACHE/providers"
PLATFORM="linux_amd64"
START_TS=$(date +%s)

export PATH="/usr/local/go/bin:$CACHE/bin:$PATH"
export GOMODCACHE="$CACHE/go/mod"
export GOCACHE="$CACHE/go/build"
export GOTOOLCHAIN=local
export GOFLAGS="-mod=readonly"
export CHECKPOINT_DISABLE=1
export TF_IN_AUTOMATION=1
export TF_INPUT=0
export TF_CLI_CONFIG_FILE="$CACHE/terraformrc"
# Never let a user's plugin cache or variables leak into the checks.
unset TF_PLUGIN_CACHE_DIR TF_DATA_DIR

mkdir -p "$CACHE/bin" "$CACHE/logs" "$MIRROR" "$GOMODCACHE" "$GOCACHE"

declare -a RESULTS=()
FAILED=0
log() { printf '==> %s\n' "$*"; }
record() { # record <status> <name>
  RESULTS+=("$(printf '%-5s %s' "$1" "$2")")
  if [ "$1" = "FAIL" ]; then FAILED=1; fi
}
run_step() { # run_step <name> <cmd...>: run, record PASS/FAIL, never abort the script
  local name="$1"; shift
  log "$name"
  if "$@"; then record PASS "$name"; else record FAIL "$name"; fi
}

# --- terraform ---------------------------------------------------------------
ensure_terraform() {
  # Read the version into a variable first: with pipefail, `terraform ... | grep -q` fails
  # whenever grep exits on its match before terraform has finished writing (SIGPIPE).
  local found=""
  if command -v terraform >/dev/null 2>&1; then
    found="$(terraform version -json 2>/dev/null || true)"
  fi
  if [[ "$found" =~ \"terraform_version\":\ *\"$TF_VERSION\" ]]; then
    return 0
  fi
  # Terraform's own go.mod replaces nested, unpublished modules
  # (internal/backend/remote-state/*), so `go install ...terraform@v$TF_VERSION`
  # cannot work through the module proxy; the binary is part of the base image.
  echo "terraform $TF_VERSION not found on PATH (expected /usr/local/bin/terraform from the base image)." >&2
  echo "It cannot be built from the Go module proxy (see docs/infrastructure.md)." >&2
  return 1
}

# --- providers ---------------------------------------------------------------
provider_dir() { echo "$MIRROR/registry.terraform.io/hashicorp/$1/$2/$PLATFORM"; }

ensure_aws_provider() {
  local dst src
  dst="$(provider_dir aws "$AWS_VERSION")"
  if compgen -G "$dst/terraform-provider-aws_v${AWS_VERSION}*" >/dev/null; then return 0; fi
  src="$(compgen -G "$AWS_SOURCE_MIRROR/registry.terraform.io/hashicorp/aws/$AWS_VERSION/$PLATFORM/terraform-provider-aws_v${AWS_VERSION}*" | head -n1 || true)"
  if [ -z "$src" ]; then
    echo "hashicorp/aws $AWS_VERSION not found under $AWS_SOURCE_MIRROR." >&2
    echo "Its v5 tags are not published as a Go module (module path has no /v5 suffix)," >&2
    echo "so it cannot be built through the Go module proxy; set TF_AWS_PROVIDER_MIRROR" >&2
    echo "to a filesystem mirror that holds it." >&2
    return 1
  fi
  mkdir -p "$dst"
  ln -sfn "$src" "$dst/$(basename "$src")"
}

# build_go_provider <name> <version>: go build from scripts/terraform-providers/<name>
build_go_provider() {
  local name="$1" version="$2" recipe dst stamp want tmp
  recipe="$ROOT/scripts/terraform-providers/$name"
  dst="$(provider_dir "$name" "$version")"
  stamp="$dst/.recipe.sha256"
  want="$(cat "$recipe/go.mod" "$recipe/go.sum" | sha256sum | cut -d' ' -f1)"
  if [ -x "$dst/terraform-provider-${name}_v${version}" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "building hashicorp/$name $version from its Go module (cold cache: a few minutes)"
  mkdir -p "$dst"
  tmp="$dst/.build.$$"
  local t0=$SECONDS
  local buildlog="$CACHE/logs/build-$name.log"
  if ! (cd "$recipe" && GOMAXPROCS="${GOMAXPROCS:-2}" nice -n 10 go build -trimpath -ldflags "-s -w" \
    -o "$tmp" "github.com/hashicorp/terraform-provider-$name") >"$buildlog" 2>&1; then
    tail -n 40 "$buildlog" >&2
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$dst/terraform-provider-${name}_v${version}"
  echo "$want" >"$stamp"
  log "built hashicorp/$name in $((SECONDS - t0))s"
}

write_cli_config() {
  cat >"$TF_CLI_CONFIG_FILE" <<EOF
# Generated by scripts/terraform-check.sh: install providers only from the local
# filesystem mirror; there is no direct (registry) installation.
provider_installation {
  filesystem_mirror {
    path    = "$MIRROR"
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
EOF
}

ensure_providers() {
  ensure_aws_provider &&
    build_go_provider helm "$HELM_VERSION" &&
    build_go_provider kubernetes "$KUBERNETES_VERSION" &&
    write_cli_config
}

# --- checkov -----------------------------------------------------------------
ensure_checkov() {
  local venv="$CACHE/checkov-$CHECKOV_VERSION"
  if [ ! -x "$venv/bin/checkov" ]; then
    log "installing checkov $CHECKOV_VERSION into $venv"
    rm -rf "$venv"
    if ! { python3 -m venv "$venv" &&
      "$venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"; }; then
      rm -rf "$venv" # never leave a half-installed venv behind for the next run
      return 1
    fi
  fi
  CHECKOV="$venv/bin/checkov"
}

run_checkov() {
  local outdir="$CACHE/checkov-report" rc=0
  rm -rf "$outdir"
  # --skip-download: no calls to the vendor API (unreachable, and not needed for the checks).
  # No --skip-check: the only skips live inline on resources, each with a justification.
  (cd "$ROOT" && "$CHECKOV" --directory terraform --framework terraform --compact --skip-download \
    --download-external-modules false --output cli --output json --output-file-path "$outdir") \
    >"$CACHE/logs/checkov.log" 2>&1 || rc=$?
  if [ ! -f "$outdir/results_json.json" ]; then
    tail -n 40 "$CACHE/logs/checkov.log" >&2
    return 1
  fi
  python3 - "$outdir/results_json.json" <<'PY' || rc=1
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
passed = failed = skipped = parse_errors = 0
for rep in reports:
    parse_errors += rep.get("summary", {}).get("parsing_errors", 0)
    res = rep.get("results", {})
    passed += len(res.get("passed_checks", []))
    failed += len(res.get("failed_checks", []))
    skipped += len(res.get("skipped_checks", []))
    for c in res.get("failed_checks", []):
        print(f"  FAILED  {c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}) {c['check_name']}")
    for c in res.get("skipped_checks", []):
        reason = (c.get("check_result") or {}).get("suppress_comment", "")
        print(f"  SKIPPED {c['check_id']} {c['resource']}: {reason}")
print(f"checkov: Passed checks: {passed}, Failed checks: {failed}, Skipped checks: {skipped}, Parsing errors: {parse_errors}")
sys.exit(1 if failed or parse_errors else 0)
PY
  return $rc
}

# --- per directory checks ----------------------------------------------------
tf_validate() { # tf_validate <dir>
  (cd "$1" && terraform init -backend=false -input=false -no-color >/dev/null &&
    terraform validate -no-color)
}
tf_test() { # tf_test <dir>
  (cd "$1" && terraform test -no-color)
}

# --- main ----------------------------------------------------------------------
if ! ensure_terraform; then
  record FAIL "terraform $TF_VERSION present"
else
  record PASS "terraform $TF_VERSION present"
  write_cli_config
  run_step "terraform fmt -check -recursive terraform/" terraform fmt -check -recursive -diff "$TF_DIR"

  if ensure_providers; then
    record PASS "providers mirror (aws $AWS_VERSION, helm $HELM_VERSION, kubernetes $KUBERNETES_VERSION)"
    mapfile -t DIRS < <(find "$TF_DIR/modules" "$TF_DIR/examples" -mindepth 1 -maxdepth 1 -type d | sort)
    for d in "${DIRS[@]}"; do
      run_step "validate ${d#"$ROOT"/}" tf_validate "$d"
    done
    for d in "${DIRS[@]}"; do
      if compgen -G "$d/tests/*.tftest.hcl" >/dev/null; then
        run_step "test ${d#"$ROOT"/}" tf_test "$d"
      fi
    done
  else
    record FAIL "providers mirror (aws $AWS_VERSION, helm $HELM_VERSION, kubernetes $KUBERNETES_VERSION)"
  fi
fi

if ensure_checkov; then
  run_step "checkov terraform/ (zero failed checks)" run_checkov
else
  record FAIL "checkov $CHECKOV_VERSION install"
fi

echo
echo "================ terraform checks summary ================"
printf '%s\n' "${RESULTS[@]}"
echo "cache: $CACHE"
echo "elapsed: $(($(date +%s) - START_TS))s"
passed=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^PASS' || true)
failed=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^FAIL' || true)
echo "terraform-check: $passed passed, $failed failed"
exit "$FAILED"
