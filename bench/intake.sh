#!/usr/bin/env bash
# Webhook intake benchmark (issue: service core). Starts the release binary on loopback with a
# fresh SQLite ledger (synchronous = FULL: every ack is on disk), then drives it with wrk:
#   - GET /healthz at 200/s and 1,000/s: the baseline, measured in the same run;
#   - POST /api/v1/alerts at 200/s and 1,000/s, each request a distinct episode;
#   - POST at saturation (no pacing, 64 connections): durable alerts/s;
#   - resident memory idle, and after 100,000 episodes.
# Prints each result and the ratios alerts/healthz. Usage: bench/intake.sh [seconds-per-run]
# (the triage jobs the alerts create run the test-only runbook, so the workers add their own
# ledger writes to the load, as real triages would).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-15}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cabal-triage/target}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

# CABAL_TRIAGE_BIN: an already built binary with the test-runbook feature (e.g. the debug build
# of `cargo build --all-features`), to skip the release build.
if [ -n "${CABAL_TRIAGE_BIN:-}" ]; then
  bin="$CABAL_TRIAGE_BIN"
else
  cargo build --release --features test-runbook --quiet
  bin="$CARGO_TARGET_DIR/release/cabal-triage"
fi
work=$(mktemp -d)
token="bench-secret-0123456789abcdef"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

CABAL_TRIAGE_WEBHOOK_TOKEN="$token" CABAL_TRIAGE_LEDGER="$work/ledger.db" \
  CABAL_TRIAGE_LISTEN=127.0.0.1:0 CABAL_TRIAGE_LOG_LEVEL=warn \
  "$bin" serve 2>"$work/stderr" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/stderr" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^cabal-triage listening on //p' "$work/stderr")
[ -n "$addr" ] || { cat "$work/stderr"; exit 1; }
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
sleep 1
echo "idle RSS: $(rss) MiB"

run=0
bench() { # label rate connections mode
  run=$((run + 1))
  local line
  line=$(wrk -t2 -c"$3" -d"${secs}s" --latency -s bench/wrk-intake.lua "http://$addr" -- "$2" "$3" "$4" "$token" "$run" \
    | grep '^RESULT')
  echo "$1: ${line#RESULT }" >&2
  echo "$line"
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

h200=$(bench "healthz  @200/s " 200 20 healthz)
a200=$(bench "alerts   @200/s " 200 20 alerts)
h1k=$(bench "healthz  @1000/s" 1000 50 healthz)
a1k=$(bench "alerts   @1000/s" 1000 50 alerts)
sat=$(bench "alerts saturated" 0 64 alerts)
hsat=$(bench "healthz saturated" 0 64 healthz)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "p99 ack latency, alerts / healthz: @200/s $(ratio "$(field p99_ms "$a200")" "$(field p99_ms "$h200")")x" \
     "($(field p99_ms "$a200") ms vs $(field p99_ms "$h200") ms);" \
     "@1000/s $(ratio "$(field p99_ms "$a1k")" "$(field p99_ms "$h1k")")x ($(field p99_ms "$a1k") ms vs $(field p99_ms "$h1k") ms)"
echo "saturation: $(field rate "$sat") durable alerts/s vs $(field rate "$hsat") healthz/s" \
     "(ratio $(ratio "$(field rate "$sat")" "$(field rate "$hsat")"))"

# Fill to 100,000 episodes with 100-alert payloads, then measure memory.
have=$(curl -s "http://$addr/metrics" | awk '/^cabal_triage_episodes\{/ {s += $2} END {print s + 0}')
python3 - "$addr" "$token" "$have" <<'PY'
import json, sys, urllib.request
addr, token, have = sys.argv[1], sys.argv[2], int(sys.argv[3])
need = max(0, 100_000 - have)
for batch in range((need + 99) // 100):
    alerts = [{"status": "firing", "labels": {"alertname": "CabalTriageTest", "n": str(batch * 100 + i)},
               "annotations": {}, "startsAt": "2026-11-28T21:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
               "generatorURL": "", "fingerprint": "%016x" % (0xF000000000 + batch * 100 + i)} for i in range(100)]
    body = json.dumps({"version": "4", "groupKey": "{}:{alertname=\"CabalTriageTest\"}", "status": "firing",
                       "receiver": "triage", "alerts": alerts}).encode()
    req = urllib.request.Request(f"http://{addr}/api/v1/alerts", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    urllib.request.urlopen(req).read()
PY
# Let the workers drain the triage jobs, then measure.
for _ in $(seq 600); do
  q=$(curl -s "http://$addr/metrics" | sed -n 's/^cabal_triage_queue_depth \([0-9]*\).*/\1/p')
  [ "${q:-1}" = "0" ] && break; sleep 1
done
total=$(curl -s "http://$addr/metrics" | awk '/^cabal_triage_episodes\{/ {s += $2} END {print s}')
echo "RSS after $total episodes: $(rss) MiB"
