#!/usr/bin/env bash
# `cabal-triage parse maillog` against `grep -c 'stat=Deferred'` on the same 200 MB synthetic
# maillog, in the same run. The maillog is built in a temp dir by repeating the fixture corpus
# (tests/fixtures/maillog/*.log: recorded sendmail lines, source-format lines, other programs'
# noise). Prints both times (best of 3, wall and CPU = user + sys), their ratios (target: parse
# <= 4x grep) and the delivery lines per CPU second of the parser (target: >= 1,000,000 per
# core). `parse maillog` classifies on every core (one worker per core), so its wall time is
# below its CPU time on a multi-core machine; grep uses one core. Both read the same file from
# the page cache. grep's count goes to a file (GNU grep stops at the first match when its
# output is /dev/null); the parser's JSON goes to /dev/null for the main figures, and once more
# to a file in the same temp dir, to show what storing its 160 MB of output adds.
# Usage: bench/parse-vs-grep.sh [SIZE_MB]   (default 200; CABAL_TRIAGE_BIN=path to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cabal-triage/target}"

# CABAL_TRIAGE_BIN: a release binary to measure instead of building one (the build directory is
# shared between worktrees, so a copy taken right after the build is the safe choice).
if [ -n "${CABAL_TRIAGE_BIN:-}" ]; then
  bin="$CABAL_TRIAGE_BIN"
else
  cargo build --release --quiet --bin cabal-triage
  bin="$CARGO_TARGET_DIR/release/cabal-triage"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat tests/fixtures/maillog/*.log >"$work/corpus.log"
target=$((size_mb * 1024 * 1024))
# Double the corpus until it is big enough, then cut at a line end.
cp "$work/corpus.log" "$work/maillog"
while [ "$(stat -c %s "$work/maillog")" -lt "$target" ]; do
  cat "$work/maillog" "$work/maillog" >"$work/next" && mv "$work/next" "$work/maillog"
done
head -c "$target" "$work/maillog" | sed '$d' >"$work/cut" && mv "$work/cut" "$work/maillog"
bytes=$(stat -c %s "$work/maillog")
lines=$(wc -l <"$work/maillog")

best_of() { # OUTPUT COMMAND...: runs it 3 times; prints the best wall and CPU (user+sys) times
  local best_wall="" best_cpu="" wall cpu output="$1"
  shift
  local TIMEFORMAT='%R %U %S'
  for _ in 1 2 3; do
    read -r wall user sys < <({ time "$@" >"$output"; } 2>&1)
    cpu=$(echo "$user + $sys" | bc -l)
    if [ -z "$best_wall" ] || [ "$(echo "$wall < $best_wall" | bc -l)" = 1 ]; then best_wall=$wall; fi
    if [ -z "$best_cpu" ] || [ "$(echo "$cpu < $best_cpu" | bc -l)" = 1 ]; then best_cpu=$cpu; fi
  done
  echo "$best_wall $best_cpu"
}

cat "$work/maillog" >/dev/null # warm the page cache for both
deliveries=$("$bin" parse maillog "$work/maillog" | wc -l)
grep_count=$(grep -c 'stat=Deferred' "$work/maillog")
# grep's output goes to a file, not /dev/null: GNU grep stops at the first match when it sees
# /dev/null as its output, which would measure nothing.
read -r t_grep c_grep < <(best_of "$work/grep.out" grep -c 'stat=Deferred' "$work/maillog")
read -r t_parse c_parse < <(best_of /dev/null "$bin" parse maillog "$work/maillog" --format json)
read -r t_file c_file < <(best_of "$work/parse.out" "$bin" parse maillog "$work/maillog" --format json)

printf 'file:            %d bytes, %d lines, %d delivery lines (%d with stat=Deferred)\n' \
  "$bytes" "$lines" "$deliveries" "$grep_count"
printf 'grep -c:         %.3f s wall, %.3f s CPU   (%s, LC_ALL=%s, count to a file)\n' "$t_grep" "$c_grep" "$(grep --version | head -1)" "${LC_ALL:-unset}"
printf 'parse maillog:   %.3f s wall, %.3f s CPU   (JSON lines to /dev/null, %s cores)\n' "$t_parse" "$c_parse" "$(nproc)"
printf 'parse to a file: %.3f s wall, %.3f s CPU   (%d bytes of JSON lines)\n' "$t_file" "$c_file" "$(stat -c %s "$work/parse.out")"
printf 'ratio:           %.2fx grep wall, %.2fx grep CPU (target <= 4x; to a file: %.2fx wall, %.2fx CPU)\n' \
  "$(echo "$t_parse / $t_grep" | bc -l)" "$(echo "$c_parse / $c_grep" | bc -l)" \
  "$(echo "$t_file / $t_grep" | bc -l)" "$(echo "$c_file / $c_grep" | bc -l)"
printf 'throughput:      %.0f delivery lines per CPU second, %.0f MB per CPU second (= per core; target >= 1000000 lines/s/core)\n' \
  "$(echo "$deliveries / $c_parse" | bc -l)" "$(echo "$bytes / 1048576 / $c_parse" | bc -l)"
printf 'load average:    %s (the machine is shared: wall times vary with it)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
