#!/usr/bin/env bash
# Generation speed and peak memory of `towerwatch simulate` at several scales, in one run.
# Usage: scripts/bench-sim.sh        (RUNS="1:28 10:28 1:84": scale:days pairs)
# Records are written hour by hour, so only one simulated hour is held in memory: peak RSS
# does not grow with the length of the run (days) and grows with the hourly rate (scale)
# only by that hour's records. The ratios printed at the end show both.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1:28 10:28 1:84}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
cargo build --release -q -p towerwatch
BIN=target/release/towerwatch
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

printf '%-6s %5s %12s %12s %9s %12s %12s %10s %9s\n' scale days events cdrs wall "events/s" "records/s" "output" "peak RSS"
declare -A RSSOF
for run in $RUNS; do
    s=${run%%:*}; DAYS=${run##*:}
    /usr/bin/time -f "%e %M" -o "$TMP/time" "$BIN" simulate --scale "$s" --days "$DAYS" --out "$TMP/sim-$s" > "$TMP/out"
    read -r wall rss < "$TMP/time"
    events=$(sed -n 's/^  \([0-9]*\) events (.*/\1/p' "$TMP/out")
    cdrs=$(sed -n 's/.* + \([0-9]*\) CDRs in .*/\1/p' "$TMP/out")
    size=$(du -sh "$TMP/sim-$s" | cut -f1)
    printf '%-6s %5s %12s %12s %8ss %12.0f %12.0f %10s %6d MiB\n' "$s" "$DAYS" "$events" "$cdrs" "$wall" \
        "$(awk "BEGIN{print $events / $wall}")" "$(awk "BEGIN{print ($events + $cdrs) / $wall}")" "$size" $((rss / 1024))
    RSSOF[$run]=$rss
    rm -rf "$TMP/sim-$s"
done
ratio() { awk "BEGIN{printf \"%.2f\", ${RSSOF[$1]} / ${RSSOF[$2]}}"; }
set -- $RUNS
[ $# -ge 2 ] && echo "peak RSS $2 / $1 (scale:days): $(ratio "$2" "$1")x"
[ $# -ge 3 ] && echo "peak RSS $3 / $1 (scale:days): $(ratio "$3" "$1")x"
