#!/usr/bin/env bash
# Ledger backends benchmark (issue 9). In one run, on loopback:
#   - webhook intake with the SQLite ledger (the baseline) and with the DynamoDB ledger on dynalite:
#     durable alerts/s at saturation and p99 ack latency at a paced rate, each request a new
#     episode (bench/wrk-intake.lua); prints the ratios DynamoDB / SQLite;
#   - lease takeover: two replicas on DynamoDB, one holding a running triage is kill -9ed; the
#     time until the other replica has taken the job over (lease expiry + its poll).
# Usage: bench/ledger-backends.sh [seconds-per-run] [lease-secs]
# CABAL_TRIAGE_BIN: an already built binary with the test-runbook feature (e.g. the debug build of
# `cargo build --all-features`), to skip the release build. Needs wrk, python3 and dynalite
# (scripts/install-dynalite.sh, run here).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
lease="${2:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cabal-triage/target}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
scripts/install-dynalite.sh

if [ -n "${CABAL_TRIAGE_BIN:-}" ]; then
  bin="$CABAL_TRIAGE_BIN"
else
  cargo build --release --features test-runbook --quiet
  bin="$CARGO_TARGET_DIR/release/cabal-triage"
fi
work=$(mktemp -d)
token="bench-secret-0123456789abcdef"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dynamo_port=$(free_port)
# dynalite, in memory, as the tests run it (tests/support/dynalite.rs).
node .test-deps/dynalite/node_modules/dynalite/cli.js --host 127.0.0.1 --port "$dynamo_port" \
  --createTableMs 0 --deleteTableMs 0 >"$work/dynalite.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$dynamo_port/" >/dev/null 2>&1 && break; sleep 0.2; done

# start NAME ENV... : starts a replica, sets $addr and $pid
start() {
  local name="$1"; shift
  env -i PATH="$PATH" CABAL_TRIAGE_WEBHOOK_TOKEN="$token" CABAL_TRIAGE_LISTEN=127.0.0.1:0 \
    CABAL_TRIAGE_LOG_LEVEL=warn CABAL_TRIAGE_LEDGER="$work/$name.db" \
    AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    CABAL_TRIAGE_AWS_ENDPOINT_URL="http://127.0.0.1:$dynamo_port" "$@" \
    "$bin" serve 2>"$work/$name.stderr" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do grep -q "listening on" "$work/$name.stderr" 2>/dev/null && break; sleep 0.1; done
  addr=$(sed -n 's/^cabal-triage listening on //p' "$work/$name.stderr")
  [ -n "$addr" ] || { cat "$work/$name.stderr"; exit 1; }
}

run=0
bench() { # label addr rate connections
  run=$((run + 1))
  local line
  line=$(wrk -t2 -c"$4" -d"${secs}s" --latency -s bench/wrk-intake.lua "http://$2" -- "$3" "$4" alerts "$token" "$run" \
    | grep '^RESULT')
  echo "$1: ${line#RESULT }" >&2
  echo "$line"
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

start sqlite
sq_paced=$(bench "sqlite   @100/s   " "$addr" 100 10)
sq_sat=$(bench "sqlite   saturated" "$addr" 0 32)
kill "$pid"; wait "$pid" 2>/dev/null || true

start dynamo CABAL_TRIAGE_LEDGER_BACKEND=dynamodb CABAL_TRIAGE_LEDGER_TABLE=bench CABAL_TRIAGE_LEDGER_CREATE_TABLE=true
dy_paced=$(bench "dynamodb @100/s   " "$addr" 100 10)
dy_sat=$(bench "dynamodb saturated" "$addr" 0 32)
kill "$pid"; wait "$pid" 2>/dev/null || true

echo
echo "saturation: dynamodb-on-dynalite $(field rate "$dy_sat") alerts/s vs sqlite $(field rate "$sq_sat") alerts/s" \
     "(ratio $(ratio "$(field rate "$dy_sat")" "$(field rate "$sq_sat")"))"
echo "p99 ack latency @100/s: dynamodb-on-dynalite $(field p99_ms "$dy_paced") ms vs sqlite $(field p99_ms "$sq_paced") ms" \
     "(ratio $(ratio "$(field p99_ms "$dy_paced")" "$(field p99_ms "$sq_paced")"))"

# Lease takeover: replica a leases a long triage, is killed; replica b takes it over.
common=(CABAL_TRIAGE_LEDGER_BACKEND=dynamodb CABAL_TRIAGE_LEDGER_TABLE=takeover CABAL_TRIAGE_LEDGER_CREATE_TABLE=true
        CABAL_TRIAGE__WORKER__LEASE_SECS="$lease" CABAL_TRIAGE__WORKER__POLL_INTERVAL_MS=100)
start a "${common[@]}"; a_addr=$addr; a_pid=$pid
body='{"version":"4","groupKey":"{}:{alertname=\"CabalTriageTest\"}","status":"firing","receiver":"triage","alerts":[{"status":"firing","labels":{"alertname":"CabalTriageTest","test_sleep_ms":"600000"},"annotations":{},"startsAt":"2026-11-28T20:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"00000000takeover"}]}'
id=$(curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$body" "http://$a_addr/api/v1/alerts" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["episodes"][0]["id"])')
attempts() { curl -s -H "Authorization: Bearer $token" "http://$1/api/v1/episodes/$id" \
  | python3 -c 'import json,sys; j=json.load(sys.stdin).get("job") or {}; print(j.get("attempts", 0))'; }
for _ in $(seq 100); do [ "$(attempts "$a_addr")" = "1" ] && break; sleep 0.1; done
start b "${common[@]}"; b_addr=$addr
sleep 2 # a keeps renewing; b polls and finds nothing runnable
killed=$(date +%s.%N)
kill -9 "$a_pid"
for _ in $(seq 1200); do [ "$(attempts "$b_addr")" = "2" ] && break; sleep 0.05; done
took=$(awk -v a="$killed" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "lease takeover after kill -9 (worker.lease_secs=$lease, heartbeat every lease/3): ${took} s"
