#!/usr/bin/env bash
# CDR-store analytics speed: audit-log records parsed and analysed per second, peak RSS, and
# the exposure re-run over the CDR extract, on a simulated operator (built here).
# Usage: scripts/bench-cdr.sh      (SCALE=20 DAYS=14 RUNS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-20}
DAYS=${DAYS:-14}
RUNS=${RUNS:-3}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
cargo build --release -q -p towerwatch
BIN=target/release/towerwatch
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$BIN" simulate -q --scale "$SCALE" --days "$DAYS" --out "$TMP/sim"
LOGS="$TMP/sim/evidence/postgresql"
CTX=(--register "$TMP/sim/context/rd_requests.csv" --assets "$TMP/sim/context/assets.csv")
lines=$(cat "$LOGS"/*/*.log | wc -l)
bytes=$(du -sb "$LOGS" | cut -f1)
echo "audit logs: $lines lines, $((bytes / 1048576)) MiB (scale $SCALE, $DAYS days)"

# best_of NAME ARGS...: best wall time over RUNS, and max RSS.
best_of() {
    local name=$1; shift
    local best="" rss=0
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %M" -o "$TMP/time" "$BIN" "$@" -q
        read -r w m < "$TMP/time"
        if [ -z "$best" ] || awk "BEGIN{exit !($w < $best)}"; then best=$w; fi
        [ "$m" -gt "$rss" ] && rss=$m
    done
    printf '%-34s %7ss %12.0f lines/s %6d MiB\n' "$name" "$best" "$(awk "BEGIN{print $lines / $best}")" $((rss / 1024))
    eval "WALL_$name=$best"
}
best_of analyse cdr "$LOGS" "${CTX[@]}"
best_of analyse_and_exposure cdr "$LOGS" "${CTX[@]}" --cdr "$TMP/sim/cdr"
cdr_rows=$(cat "$TMP"/sim/cdr/cdr_*.csv | wc -l)
echo "exposure re-reads $cdr_rows CDR rows: $(awk "BEGIN{printf \"%.2f\", $WALL_analyse_and_exposure / $WALL_analyse}")x the analysis alone"
echo "goal: analysis >= 200000 lines/s"
