#!/usr/bin/env bash
# `cabal-triage parse maillog` against `grep -c 'stat=Deferred'` on the same 200 MB synthetic
# maillog, in the same run. The maillog is built in a temp dir by repeating the fixture corpus
# (tests/fixtures/maillog/*.log: recorded sendmail lines, source-format lines, other programs'
# noise). Prints both times, their ratio (target: parse <= 4x grep) and the delivery lines per
# second of the parser (target: >= 1,000,000 per core).
# Usage: bench/parse-vs-grep.sh [SIZE_MB]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cabal-triage/target}"

cargo build --release --quiet --bin cabal-triage
bin="$CARGO_TARGET_DIR/release/cabal-triage"

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

now() { date +%s.%N; }
best_of() { # runs a command 3 times, prints the best wall time in seconds
  local best="" start end t
  for _ in 1 2 3; do
    start=$(now); "$@" >/dev/null; end=$(now)
    t=$(echo "$end - $start" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
  done
  echo "$best"
}

cat "$work/maillog" >/dev/null # warm the page cache for both
deliveries=$("$bin" parse maillog "$work/maillog" | wc -l)
grep_count=$(grep -c 'stat=Deferred' "$work/maillog")
t_grep=$(best_of grep -c 'stat=Deferred' "$work/maillog")
t_parse=$(best_of "$bin" parse maillog "$work/maillog" --format json)

printf 'file:            %d bytes, %d lines, %d delivery lines (%d with stat=Deferred)\n' \
  "$bytes" "$lines" "$deliveries" "$grep_count"
printf 'grep -c:         %.3f s   (%s, LC_ALL=%s)\n' "$t_grep" "$(grep --version | head -1)" "${LC_ALL:-unset}"
printf 'parse maillog:   %.3f s   (output to /dev/null)\n' "$t_parse"
printf 'ratio:           %.2fx grep (target <= 4x)\n' "$(echo "$t_parse / $t_grep" | bc -l)"
printf 'throughput:      %.0f delivery lines/s, %.0f MB/s (one core; target >= 1000000 lines/s)\n' \
  "$(echo "$deliveries / $t_parse" | bc -l)" "$(echo "$bytes / 1048576 / $t_parse" | bc -l)"
