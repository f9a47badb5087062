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
# Both the service and the fakes are release builds: the fakes (front, fake ECS, fake agent) run
# in the test process, and a debug build of them spends more CPU per session than the service
# does, which would be measured as the service's time. For the same reason the fake agent answers
# each session's command from outputs captured before the triage starts (the command run once per
# task, for real), instead of spawning /bin/sh per session; frames, acks and delays stay real
# (BENCH_AGENT_COMMANDS=spawn restores a process per session). moto (Python) still answers the
# CloudWatch Logs and EC2 calls and takes its own time for them. Each shape runs RUNS times
# (default 5); the best and the median are printed (these machines are noisy: other processes'
# CPU lands in the wall time; `uptime` is printed with each shape).
#
# The IMAPAuthFailureSpike and ContainerRestartLoop runbooks make AWS calls only (no ECS Exec):
# each is measured the same way against its own chains (their `CHAINS` constants, printed), with
# a second critical path beside the latency model: the longest chain as the front saw its calls
# (each call's upstream time plus the latency), which leaves moto's own time out of the
# service's account.
#
# Usage: bench/triage-latency.sh   (1 imap task; smtp-in/smtp-out tasks: 2/3, 2/8, 6/8, 10/20, 20/40)
# Env: LATENCY_MS, RUNS, SHAPES (e.g. "2 3,10 20": smtp-in and smtp-out tasks per shape),
#      RUNBOOKS (default "sendmail imap-auth-failure-spike container-restart-loop"),
#      CABAL_TRIAGE_TEST_BIN (the service binary under test; built here when unset),
#      BENCH_HARNESS (a prebuilt tests/triage_latency binary; built here when unset),
#      BENCH_AGENT_COMMANDS (prepared, the default, or spawn),
#      BENCH_TIMELINE=1 (print every delayed call and exec session of the last run).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cabal-triage/target}
LATENCY_MS=${LATENCY_MS:-50}
RUNS=${RUNS:-5}
SHAPES=${SHAPES:-2 3,2 8,6 8,10 20,20 40}
RUNBOOKS=${RUNBOOKS:-sendmail imap-auth-failure-spike container-restart-loop}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -z "${CABAL_TRIAGE_TEST_BIN:-}" ]]; then
  cargo build --release --all-features --bin cabal-triage >&2
  export CABAL_TRIAGE_TEST_BIN=$work/cabal-triage
  cp "$CARGO_TARGET_DIR/release/cabal-triage" "$CABAL_TRIAGE_TEST_BIN"
fi
# The fakes, in release too; copied at once (the build directory may be shared).
harness=${BENCH_HARNESS:-}
[[ -n "$harness" ]] || harness=$(cargo test --release --all-features --test triage_latency --no-run --message-format json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "triage_latency" and m.get("executable"):
        print(m["executable"])')
cp "$harness" "$work/triage_latency"

IFS=, read -r -a shapes <<<"$SHAPES"
[[ " $RUNBOOKS " == *" sendmail "* ]] || shapes=()
for shape in "${shapes[@]}"; do
  read -r smtp_in smtp_out <<<"$shape"
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  : >"$work/runs"
  for _ in $(seq "$RUNS"); do
    BENCH_LATENCY_MS=$LATENCY_MS BENCH_SMTP_IN_TASKS=$smtp_in BENCH_SMTP_OUT_TASKS=$smtp_out \
      "$work/triage_latency" triage_latency --exact --ignored --nocapture --test-threads 1 >"$work/out" 2>&1 ||
      { tail -40 "$work/out" >&2; exit 1; }
    sed -n 's/^.*BENCH //p' "$work/out" >>"$work/runs"
  done
  if [[ -n "${BENCH_TIMELINE:-}" ]]; then grep -E 'TIMELINE|STEP' "$work/out" || true; fi
  python3 - "$work/runs" "$load" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
if not runs:
    sys.exit("no BENCH line: the measurement failed (run the test by hand to see why)")
r = runs[-1]
lat = r["latency_ms"]
critical = lat * max(max(x["chains"].values()) for x in runs)
sequential = lat * max(x["delayed_total"] for x in runs)
walls = sorted(x["wall_ms"] for x in runs)
best, median = walls[0], statistics.median(walls)
tasks = ", ".join(f"{t} {n}" for t, n in r["tasks"].items())
print(f"tasks: {tasks} ({r['exec_sessions']} exec sessions, agent commands {r.get('agent_commands', 'spawn')}); latency {lat} ms per AWS call and per exec output frame; {len(runs)} runs; load average before: {sys.argv[2]}")
print(f"  chains (delayed steps): {r['chains']}; calls: {r['calls']}; frames/session: {r['frames_per_session']}")
print(f"  triage wall best {best} ms, median {median:.0f} ms (all: {walls}); critical path {critical} ms; sequential sum {sequential} ms")
print(f"  wall / critical path = {best / critical:.2f} best, {median / critical:.2f} median (target <= 1.30); sequential / wall = {sequential / best:.1f}x")
PY
done

for runbook in $RUNBOOKS; do
  case $runbook in
    sendmail) continue ;;
    imap-auth-failure-spike) test_name=triage_latency_imap_auth ;;
    container-restart-loop) test_name=triage_latency_restart_loop ;;
    *) echo "unknown runbook $runbook" >&2; exit 2 ;;
  esac
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  : >"$work/runs"
  for _ in $(seq "$RUNS"); do
    BENCH_LATENCY_MS=$LATENCY_MS "$work/triage_latency" "$test_name" --exact --ignored --nocapture \
      --test-threads 1 >"$work/out" 2>&1 || { tail -40 "$work/out" >&2; exit 1; }
    sed -n 's/^.*BENCH //p' "$work/out" >>"$work/runs"
  done
  if [[ -n "${BENCH_TIMELINE:-}" ]]; then grep -E 'TIMELINE|STEP' "$work/out" || true; fi
  python3 - "$work/runs" "$load" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
if not runs:
    sys.exit("no BENCH line: the measurement failed (run the test by hand to see why)")
r = runs[-1]
lat = r["latency_ms"]
critical = lat * max(max(x["chains"].values()) for x in runs)
observed = [max(x["chains_observed_ms"].values()) for x in runs]
sequential = lat * max(x["delayed_total"] for x in runs)
walls = sorted(x["wall_ms"] for x in runs)
best, median = walls[0], statistics.median(walls)
print(f"{r['runbook']} (verdict cause {r['verdict']}); latency {lat} ms per AWS call; {len(runs)} runs; load average before: {sys.argv[2]}")
print(f"  chains: {r['chain_text']}")
print(f"  delayed steps per chain: {r['chains']}; calls: {r['calls']}")
print(f"  triage wall best {best} ms, median {median:.0f} ms (all: {walls}); critical path {critical} ms; as observed (upstream time + latency, longest chain) median {statistics.median(observed):.0f} ms (all: {observed}); sequential sum {sequential} ms")
ratios = sorted(x["wall_ms"] / max(x["chains_observed_ms"].values()) for x in runs)
print(f"  wall / critical path = {best / critical:.2f} best, {median / critical:.2f} median (target <= 1.30); wall / observed chain = {ratios[0]:.2f} best, {statistics.median(ratios):.2f} median; sequential / wall = {sequential / best:.1f}x")
PY
done
