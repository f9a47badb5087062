#!/usr/bin/env bash
# Validates deploy/ with the tools this machine has, and says which checks it could not run:
#   terraform validate   (deploy/terraform; providers from TF_PLUGIN_DIR or /opt/tf-plugins when
#                         the registry cannot be reached, else from registry.terraform.io)
#   systemd-analyze verify (deploy/systemd/cabal-triage.service, against a built binary)
#   amtool check-config  (deploy/alertmanager/alertmanager.yml)
#   JSON syntax          (deploy/ecs/task-definition.json, deploy/iam/cabal-triage-policy.json)
# `docker build` is not run here (no Docker daemon on these machines).
# Usage: scripts/check-deploy.sh [PATH-TO-cabal-triage-BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
skipped=()
log() { printf '==> %s\n' "$*"; }

for json in deploy/ecs/task-definition.json deploy/iam/cabal-triage-policy.json; do
  log "JSON syntax: $json"
  python3 -m json.tool "$json" >/dev/null || status=1
done

if command -v amtool >/dev/null 2>&1; then
  log "amtool check-config deploy/alertmanager/alertmanager.yml"
  amtool check-config deploy/alertmanager/alertmanager.yml >/dev/null || status=1
else
  skipped+=("amtool check-config (install prometheus-alertmanager)")
fi

if command -v terraform >/dev/null 2>&1; then
  log "terraform validate deploy/terraform"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # A copy, so that .terraform/ and the lock file never land in the repository; the module
  # reads ../iam/cabal-triage-policy.json, so deploy/ is copied whole.
  cp -r deploy "$work/"
  plugin_dir="${TF_PLUGIN_DIR:-/opt/tf-plugins}"
  init_args=(-backend=false -input=false)
  if [ -d "$plugin_dir" ]; then init_args+=(-plugin-dir="$plugin_dir"); fi
  if (cd "$work/deploy/terraform" && terraform init "${init_args[@]}" >/dev/null 2>&1); then
    (cd "$work/deploy/terraform" && terraform validate -no-color) || status=1
    (cd deploy/terraform && terraform fmt -check -no-color .) || { echo "terraform fmt: run terraform fmt deploy/terraform"; status=1; }
  else
    skipped+=("terraform validate (terraform init found no hashicorp/aws provider)")
  fi
else
  skipped+=("terraform validate (no terraform)")
fi

if command -v systemd-analyze >/dev/null 2>&1; then
  binary="${1:-${CARGO_TARGET_DIR:-target}/debug/cabal-triage}"
  if [ -x "$binary" ]; then
    log "systemd-analyze verify deploy/systemd/cabal-triage.service (ExecStart=$binary)"
    unit_dir=$(mktemp -d)
    sed "s#/usr/local/bin/cabal-triage#$(realpath "$binary")#" deploy/systemd/cabal-triage.service \
      > "$unit_dir/cabal-triage.service"
    # verify exits 0 on ignored lines ("Unknown key", "Failed to parse"): any output fails.
    if ! out=$(systemd-analyze verify "$unit_dir/cabal-triage.service" 2>&1) || [ -n "$out" ]; then
      echo "$out"; status=1
    fi
    rm -rf "$unit_dir"
  else
    skipped+=("systemd-analyze verify (no built binary at $binary)")
  fi
else
  skipped+=("systemd-analyze verify (no systemd-analyze)")
fi

skipped+=("docker build (not available here; deploy/Dockerfile is checked by reading in tests/deploy.rs)")
for s in "${skipped[@]}"; do echo "not checked: $s"; done
exit $status
