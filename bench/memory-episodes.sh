#!/usr/bin/env bash
# Memory against history (issue 20 item 10): does the service's resident memory grow with the
# number of episodes it has seen? Starts the binary on loopback with a fresh ledger (SQLite, or
# DynamoDB on dynalite with BACKEND=dynamodb), posts episodes through the webhook (batches of
# alerts, each a distinct episode of the test-only runbook, so every one is triaged and its
# report stored), waits until every one is triaged, and prints VmRSS (from /proc/PID/status)
# after 500 episodes (the baseline, measured in the same run) and after 10,000, with the ratio.
# Target: the second at most 1.3x the first and under 60 MiB.
#
# Usage: bench/memory-episodes.sh [first] [second]   (defaults 500 10000)
# CABAL_TRIAGE_BIN: an already built binary with the test-runbook feature (e.g. the debug build
# of `cargo build --all-features`), to skip the release build. BACKEND=sqlite|dynamodb.
set -euo pipefail
cd "$(dirname "$0")/.."
first="${1:-500}"
second="${2:-10000}"
backend="${BACKEND:-sqlite}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cabal-triage/target}"

if [ -n "${CABAL_TRIAGE_BIN:-}" ]; then
  bin="$CABAL_TRIAGE_BIN"
else
  cargo build --release --features test-runbook --quiet
  bin="$CARGO_TARGET_DIR/release/cabal-triage"
fi
work=$(mktemp -d)
token="bench-secret-0123456789abcdef"
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null
  [ -n "${dynalite_pid:-}" ] && kill "$dynalite_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

env_backend=()
if [ "$backend" = dynamodb ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  node "${CABAL_TRIAGE_DYNALITE:-.test-deps/dynalite/node_modules/dynalite/cli.js}" \
    --host 127.0.0.1 --port "$port" --createTableMs 0 --deleteTableMs 0 >/dev/null 2>&1 &
  dynalite_pid=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  env_backend=(CABAL_TRIAGE_LEDGER_BACKEND=dynamodb CABAL_TRIAGE_LEDGER_TABLE=bench
    CABAL_TRIAGE_LEDGER_CREATE_TABLE=true CABAL_TRIAGE_AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
    AWS_EC2_METADATA_DISABLED=true)
fi

env "${env_backend[@]}" CABAL_TRIAGE_WEBHOOK_TOKEN="$token" CABAL_TRIAGE_LEDGER="$work/ledger.db" \
  CABAL_TRIAGE_LISTEN=127.0.0.1:0 CABAL_TRIAGE_LOG_LEVEL=warn \
  "$bin" serve 2>"$work/stderr" &
pid=$!
for _ in $(seq 300); do grep -q "listening on" "$work/stderr" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^cabal-triage listening on //p' "$work/stderr")
[ -n "$addr" ] || { cat "$work/stderr"; exit 1; }
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
echo "backend: $backend; binary: $bin"
echo "idle RSS: $(rss) MiB"

# Posts episodes [from, to) in batches of 50 alerts and waits until all are triaged.
ingest() {
  python3 - "$addr" "$token" "$1" "$2" <<'PY'
import http.client, json, sys, time
addr, token, start, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=60)
headers = {"Content-Type": "application/json", "Authorization": "Bearer " + token}
for first in range(start, end, 50):
    alerts = [{"status": "firing",
               "labels": {"alertname": "CabalTriageTest", "severity": "warning", "n": str(n)},
               "annotations": {"summary": "memory benchmark episode %d" % n},
               "startsAt": "2026-11-28T20:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
               "generatorURL": "", "fingerprint": "%016x" % n}
              for n in range(first, min(first + 50, end))]
    body = json.dumps({"receiver": "triage", "status": "firing", "version": "4",
                       "groupKey": '{}:{alertname="CabalTriageTest"}', "truncatedAlerts": 0,
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://alertmanager:9093", "alerts": alerts})
    while True:
        conn.request("POST", "/api/v1/alerts", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status == 202:
            break
        if response.status != 503:
            sys.exit("POST answered %d" % response.status)
        time.sleep(0.2)
deadline = time.time() + 900
while time.time() < deadline:
    conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
    text = conn.getresponse().read().decode()
    triaged = 0
    for line in text.splitlines():
        if line.startswith('cabal_triage_episodes{state="triaged"}'):
            triaged = int(float(line.split()[-1]))
    if triaged >= end:
        break
    time.sleep(0.5)
else:
    sys.exit("only %d of %d episodes triaged" % (triaged, end))
PY
  sleep 2
}

t0=$(date +%s)
ingest 0 "$first"
base=$(rss)
echo "after $first episodes: $base MiB ($(( $(date +%s) - t0 )) s)"
ingest "$first" "$second"
after=$(rss)
echo "after $second episodes: $after MiB ($(( $(date +%s) - t0 )) s)"
awk -v a="$after" -v b="$base" -v n="$second" -v m="$first" 'BEGIN {
  printf "ratio %d/%d episodes: %.2f (target <= 1.30, and under 60 MiB: %s)\n", n, m, a / b, (a < 60 ? "yes" : "no") }'
