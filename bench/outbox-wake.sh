#!/usr/bin/env bash
# How long after a triage ends its verdict reaches Slack: the real binary against the fake Slack,
# the default outbox poll (500 ms), first with the poll alone (delivery.wake_on_write = false,
# the baseline), then woken in-process when the verdict is written. Per mode: the lag of each
# episode (202 -> verdict chat.update at the fake Slack, less the triage's own time), the
# median and the worst; then the ratio baseline / woken. Target: woken worst lag <= 100 ms.
#
# Usage: bench/outbox-wake.sh     Env: BENCH_EPISODES (default 5), BENCH_TRIAGE_MS (default 550)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cabal-triage/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --all-features --bin cabal-triage >&2
export CABAL_TRIAGE_TEST_BIN=$work/cabal-triage
cp "$CARGO_TARGET_DIR/release/cabal-triage" "$CABAL_TRIAGE_TEST_BIN"
cargo test --release --all-features --test outbox_wake -- --ignored --nocapture >"$work/out" 2>&1 ||
  { tail -40 "$work/out" >&2; exit 1; }
python3 - "$work/out" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    if "BENCH " in line:
        r = json.loads(line.split("BENCH ", 1)[1])
        runs[r["wake_on_write"]] = r
if set(runs) != {False, True}:
    sys.exit("missing BENCH lines: the measurement failed (run the test by hand to see why)")
for wake in (False, True):
    lags = runs[wake]["lags_ms"]
    name = "woken (wake_on_write)" if wake else "poll only (baseline)"
    print(f"{name}: triage {runs[wake]['triage_ms']} ms; lag after the triage: median {statistics.median(lags):.0f} ms, worst {max(lags):.0f} ms (all: {[round(l) for l in lags]})")
base, woken = statistics.median(runs[False]["lags_ms"]), statistics.median(runs[True]["lags_ms"])
print(f"median lag poll-only / woken = {base / max(woken, 1):.1f}x; woken worst {max(runs[True]['lags_ms']):.0f} ms (target <= 100 ms)")
PY
