#!/usr/bin/env bash
# Triage wall time against the critical path, with every AWS call and every ECS Exec output frame
# delayed by LATENCY_MS (default 50) on loopback fakes (moto behind a delaying front, the fake ECS
# Exec agent). For each run the test prints how many delayed calls each chain of dependent calls
# made; this script turns them into
#   critical path = LATENCY_MS x the longest chain (tasks -> exec -> frames | log pages | NAT),
#   sequential    = LATENCY_MS x every delayed call and frame (what the runbook's commands cost
#                   a human who runs them one after the other),
# and prints wall / critical path (target <= 1.3) and sequential / wall.
#
# Usage: bench/triage-latency.sh            (runs with 3 and then 8 smtp-out tasks)
# Env: LATENCY_MS, CABAL_TRIAGE_TEST_BIN (the binary under test; built here when unset).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/cabal-triage/target}
LATENCY_MS=${LATENCY_MS:-50}
if [[ -z "${CABAL_TRIAGE_TEST_BIN:-}" ]]; then
  cargo build --release --all-features --bin cabal-triage >&2
  export CABAL_TRIAGE_TEST_BIN=/tmp/triage-latency-bin
  cp "$CARGO_TARGET_DIR/release/cabal-triage" "$CABAL_TRIAGE_TEST_BIN"
fi
cargo test --all-features --test triage_latency --no-run >&2

for shape in "2 3" "2 8" "6 8"; do
  read -r smtp_in smtp_out <<<"$shape"
  line=$(BENCH_LATENCY_MS=$LATENCY_MS BENCH_SMTP_IN_TASKS=$smtp_in BENCH_SMTP_OUT_TASKS=$smtp_out \
    cargo test --all-features --test triage_latency -- --ignored --nocapture --test-threads 1 2>/dev/null \
    | sed -n 's/^.*BENCH //p')
  python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
lat = r["latency_ms"]
chains = r["chains"]
critical = lat * max(chains.values())
sequential = lat * r["delayed_total"]
wall = r["wall_ms"]
tasks = ", ".join(f"{t} {n}" for t, n in r["tasks"].items())
print(f"tasks: {tasks}; latency {lat} ms per AWS call and per exec output frame")
print(f"  chains (delayed steps): {chains}; calls: {r['calls']}; frames/session: {r['frames_per_session']}")
print(f"  triage wall {wall} ms (process {r['process_ms']} ms); critical path {critical} ms; sequential sum {sequential} ms")
print(f"  wall / critical path = {wall / critical:.2f} (target <= 1.30); sequential / wall = {sequential / wall:.1f}x")
PY
done
