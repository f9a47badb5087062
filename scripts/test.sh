#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Debian's and PyPI's
# packages, dynalite from npm), then checks formatting and lints, and runs every test with
# cargo-nextest.
# `.ci/run` runs exactly this. Safe to run again: installs are skipped when already present.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cabal-triage/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"

log() { printf '==> %s\n' "$*"; }

# --- what the tests need --------------------------------------------------------------------
ensure_python_package() { # module pip-spec
  if ! python3 -c "import $1" >/dev/null 2>&1; then
    log "installing $2 from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check "$2"
  fi
}
if [ -f tests/requirements.txt ]; then
  if ! python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt; then
    echo "cannot install tests/requirements.txt from PyPI" >&2
    exit 1
  fi
fi
# dynalite: DynamoDB for the ledger's tests (tests/support/dynalite.rs), from npm.
scripts/install-dynalite.sh
# Debian's Alertmanager for tests/e2e.rs and amtool for tests/deploy.rs (binary:
# /usr/bin/prometheus-alertmanager). The tests fail instead of skipping when it is missing.
if ! command -v alertmanager >/dev/null 2>&1 && [ ! -x /usr/bin/prometheus-alertmanager ]; then
  log "installing prometheus-alertmanager from Debian"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    prometheus-alertmanager >/dev/null
fi
export CABAL_TRIAGE_REQUIRE_ALERTMANAGER=1
# tests/reliability.rs puts a SQLite ledger on a small ext4 loop device (disk full, read-only).
debs=()
command -v mkfs.ext4 >/dev/null 2>&1 || debs+=(e2fsprogs)
command -v findmnt >/dev/null 2>&1 || debs+=(util-linux)
command -v mount >/dev/null 2>&1 || debs+=(mount)
if [ "${#debs[@]}" -gt 0 ]; then
  log "installing ${debs[*]} from Debian"
  apt-get update -qq && apt-get install -y -qq "${debs[@]}" >/dev/null
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
  log "installing cargo-nextest from crates.io"
  cargo install --locked cargo-nextest
fi

# --- checks ---------------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy -D warnings"
cargo clippy --all-targets --all-features -- -D warnings

# --- tests ----------------------------------------------------------------------------------
log "cargo nextest run"
cargo nextest run --all-features --no-fail-fast "$@"
log "doc tests"
cargo test --all-features --doc
log "deploy/ checks"
scripts/check-deploy.sh "$CARGO_TARGET_DIR/debug/cabal-triage"
