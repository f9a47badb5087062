#!/usr/bin/env bash
# Validates deploy/ with the tools this machine has, and says which checks it could not run:
#   terraform fmt/validate (deploy/terraform copied alone, and wired into a stand-in of
#                         Cabalmail's terraform/infra by deploy/cabalmail/triage.tf; providers from
#                         registry.terraform.io, else TF_PLUGIN_DIR or /opt/tf-plugins with a notice)
#   systemd-analyze verify (deploy/systemd/cabal-triage.service, against a built binary)
#   amtool check-config  (deploy/alertmanager/alertmanager.yml, and the Cabalmail template rendered)
#   cargo check --target aarch64-unknown-linux-gnu (when the target and a cross compiler exist)
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
  log "amtool check-config deploy/alertmanager/cabalmail/alertmanager.yml.tmpl (rendered as Cabalmail's entrypoint does)"
  am_rendered=$(mktemp)
  if ALERT_SINK_URL=https://example.lambda-url.us-west-2.on.aws/ ALERT_SECRET=check-deploy \
      CABAL_TRIAGE_WEBHOOK_TOKEN=check-deploy-token \
      deploy/alertmanager/cabalmail/render.sh deploy/alertmanager/cabalmail/alertmanager.yml.tmpl "$am_rendered"; then
    amtool check-config "$am_rendered" >/dev/null || status=1
  else
    status=1
  fi
  rm -f "$am_rendered"
else
  skipped+=("amtool check-config (install prometheus-alertmanager)")
fi

# terraform init for the directory $1. The registry first (the pinned hashicorp/aws >= 6, < 7);
# offline, the newest provider in the plugin directory, with the copy's constraint rewritten to
# it and a notice saying so (the module uses no attribute that differs between 5.100 and 6.x).
tf_init() {
  local dir=$1
  if (cd "$dir" && terraform init -backend=false -input=false >/dev/null 2>&1); then
    return 0
  fi
  local plugin_dir="${TF_PLUGIN_DIR:-/opt/tf-plugins}"
  local local_version
  local_version=$(ls "$plugin_dir/registry.terraform.io/hashicorp/aws" 2>/dev/null | sort -V | tail -1)
  [ -n "$local_version" ] || return 1
  echo "NOTICE: registry unreachable; validating $dir against hashicorp/aws $local_version from $plugin_dir instead of the pinned \">= 6.0.0, < 7.0.0\""
  find "$dir" -name '*.tf' -exec sed -i "s/version *= *\">= 6.0.0, < 7.0.0\"/version = \"$local_version\"/" {} +
  (cd "$dir" && terraform init -backend=false -input=false -plugin-dir="$plugin_dir" >/dev/null 2>&1)
}

if command -v terraform >/dev/null 2>&1; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  log "terraform fmt -check deploy/terraform deploy/cabalmail tests/fixtures/cabalmail-root"
  terraform fmt -check -recursive -no-color deploy/terraform deploy/cabalmail tests/fixtures/cabalmail-root \
    || { echo "terraform fmt: run terraform fmt -recursive on the files above"; status=1; }
  log "provider pin: hashicorp/aws >= 6.0.0, < 7.0.0 (Cabalmail's terraform/infra/terraform.tf)"
  grep -q 'version = ">= 6.0.0, < 7.0.0"' deploy/terraform/versions.tf || { echo "deploy/terraform/versions.tf does not pin Cabalmail's aws provider range"; status=1; }
  # The module alone, copied without the rest of deploy/ (it must read nothing outside itself).
  log "terraform validate deploy/terraform (copied alone)"
  mkdir -p "$work/module" && cp -r deploy/terraform/. "$work/module/"
  if tf_init "$work/module"; then
    (cd "$work/module" && terraform validate -no-color) || status=1
    # Cabalmail's root with the module under modules/triage and deploy/cabalmail/triage.tf.
    log "terraform validate deploy/cabalmail/triage.tf in a stand-in of Cabalmail's terraform/infra"
    cp -r tests/fixtures/cabalmail-root "$work/infra"
    mkdir -p "$work/infra/modules/triage" && cp -r deploy/terraform/. "$work/infra/modules/triage/"
    cp deploy/cabalmail/triage.tf "$work/infra/triage.tf"
    if tf_init "$work/infra"; then
      (cd "$work/infra" && terraform validate -no-color) || status=1
    else
      echo "terraform init failed in the stand-in root"; status=1
    fi
  else
    skipped+=("terraform validate (terraform init found no hashicorp/aws provider)")
  fi
else
  skipped+=("terraform validate (no terraform)")
fi

# The build stage of deploy/Dockerfile compiles natively for linux/arm64 on Cabalmail's runners;
# here a cross `cargo check` shows the code and its C dependencies build for aarch64.
if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
  && command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
  log "cargo check --target aarch64-unknown-linux-gnu"
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    cargo check --locked --release --bin cabal-triage --target aarch64-unknown-linux-gnu || status=1
else
  skipped+=("cargo check --target aarch64-unknown-linux-gnu (rustup target add aarch64-unknown-linux-gnu; apt-get install gcc-aarch64-linux-gnu)")
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
