#!/usr/bin/env bash
# Installs dynalite (the DynamoDB engine of the ledger's tests and of bench/ledger-backends.sh),
# pinned by tests/dynalite/package-lock.json, into .test-deps/dynalite (ignored by git); Node.js
# and npm from Debian when missing. Does nothing when that exact lock file is installed already.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "==> installing nodejs and npm from Debian"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    nodejs npm >/dev/null
fi
target=.test-deps/dynalite
if cmp -s tests/dynalite/package-lock.json "$target/package-lock.json" \
  && [ -f "$target/node_modules/dynalite/cli.js" ]; then
  exit 0
fi
echo "==> installing dynalite from npm into $target"
rm -rf "$target"
mkdir -p "$target"
cp tests/dynalite/package.json tests/dynalite/package-lock.json "$target/"
npm ci --prefix "$target" --no-audit --no-fund --loglevel=error
