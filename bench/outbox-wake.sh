#!/usr/bin/env bash
# How long after a triage ends its verdict reaches Slack: the real binary against the fake Slack,
# the default outbox poll (500 ms), first with the poll alone (delivery.wake_on_write = false,
# the baseline), then woken in-process when the verdict is written. Per mode: the lag of each
# episode (202 -> verdict chat.update at the fake Slack, less the triage's own time: this
# includes the ledger commits of the lease, the report and the claim), the median and the worst,
# and the time from the triage's end (the report's finished_at) to the verdict at Slack; then
# the ratio baseline / woken. Target: woken lag <= 100 ms.
#
# The quantity is waiting (a poll interval against a wake), not CPU, so the default is the dev
# profile; BENCH_PROFILE=release measures release builds.
#
# Usage: bench/outbox-wake.sh
# Env: BENCH_EPISODES (default 8), BENCH_TRIAGE_MS (default 550), BENCH_PROFILE (dev or release)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cabal-triage/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
profile=${BENCH_PROFILE:-dev}
dir=$([[ $profile == release ]] && echo release || echo debug)
cargo build --profile "$profile" --all-features --bin cabal-triage >&2
export CABAL_TRIAGE_TEST_BIN=$work/cabal-triage
cp "$CARGO_TARGET_DIR/$dir/cabal-triage" "$CABAL_TRIAGE_TEST_BIN"
cargo test --profile "$profile" --all-features --test outbox_wake -- --ignored --nocapture >"$work/out" 2>&1 ||
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
    end = runs[wake]["after_end_ms"]
    print(f"{name}: triage {runs[wake]['triage_ms']} ms; lag beyond the triage: median {statistics.median(lags):.0f} ms, worst {max(lags):.0f} ms (all: {[round(l) for l in lags]}); triage end -> Slack: median {statistics.median(end):.0f} ms, worst {max(end):.0f} ms")
base, woken = statistics.median(runs[False]["lags_ms"]), statistics.median(runs[True]["lags_ms"])
print(f"median lag poll-only / woken = {base / max(woken, 1):.1f}x; woken worst {max(runs[True]['lags_ms']):.0f} ms (target <= 100 ms)")
PY
