#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Debian's and PyPI's
# packages, dynalite from npm), then checks formatting and lints, and runs every test with
# cargo-nextest.
# `.ci/run` runs exactly this. Safe to run again: installs are skipped when already present.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cabal-triage/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# No incremental compilation state: a one-shot run never reuses it, and it costs about 10 GB of
# disk beside the build (a CI machine that filled its disk failed to link with a bus error).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
mkdir -p "$CARGO_TARGET_DIR"

log() { printf '==> %s\n' "$*"; }

# --- what the tests need --------------------------------------------------------------------
# Needs: a Rust toolchain, a C compiler (bundled SQLite, aws-lc), Python 3 with venv, Node.js and
# npm (dynalite). Debian packages are installed with sudo when not running as root.
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
apt_install() { # package...
  log "installing $* from Debian"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v cc >/dev/null 2>&1 || { echo "no C compiler (cc): apt-get install build-essential" >&2; exit 1; }
# Python test dependencies (moto) go into a virtual environment under .test-deps/ (ignored by
# git): a system-wide pip install is refused on stock Debian 12 / Ubuntu 24.04 (PEP 668). Packages
# already installed system-wide are reused. Its python3 comes first on PATH for the tests.
venv=.test-deps/venv
if [ ! -x "$venv/bin/python3" ]; then
  log "creating the Python virtual environment $venv"
  python3 -m venv --system-site-packages "$venv" \
    || { echo "python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
fi
if ! "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt; then
  echo "cannot install tests/requirements.txt into $venv from PyPI" >&2
  exit 1
fi
export PATH="$PWD/$venv/bin:$PATH"
# dynalite: DynamoDB for the ledger's tests (tests/support/dynalite.rs), from npm.
scripts/install-dynalite.sh
# Debian's Alertmanager for tests/e2e.rs and amtool for tests/deploy.rs (binary:
# /usr/bin/prometheus-alertmanager). The tests fail instead of skipping when it is missing.
if ! command -v alertmanager >/dev/null 2>&1 && [ ! -x /usr/bin/prometheus-alertmanager ]; then
  apt_install prometheus-alertmanager
fi
export CABAL_TRIAGE_REQUIRE_ALERTMANAGER=1
# tests/reliability.rs puts a SQLite ledger on a small ext4 loop device (disk full, read-only).
debs=()
command -v mkfs.ext4 >/dev/null 2>&1 || debs+=(e2fsprogs)
command -v findmnt >/dev/null 2>&1 || debs+=(util-linux)
command -v mount >/dev/null 2>&1 || debs+=(mount)
# The signal tests send SIGHUP, SIGTERM, SIGSTOP with kill(1) (a shell's builtin is not enough).
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || debs+=(procps)
if [ "${#debs[@]}" -gt 0 ]; then apt_install "${debs[@]}"; fi
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
