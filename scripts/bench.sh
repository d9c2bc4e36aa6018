#!/usr/bin/env bash
# Hunt speed against our own parse-only pass, measured in the same run.
# Usage: scripts/bench.sh [EVIDENCE_DIR]   (default: ../shared/data/evtx)
# RUNS=N repeats each measurement (best wall time is kept); COPIES=N also measures the
# corpus repeated N times (symlinks), where fixed start-up and rule-compile costs amortize.
# A second corpus is a simulated operator's Windows events (SIM="--scale 2 --days 28").
# TOWERWATCH_BIN=PATH measures another build (say, an older commit's) instead of this one.
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-../shared/data/evtx}
RUNS=${RUNS:-3}
COPIES=${COPIES:-10}
[ -d "$CORPUS" ] || { echo "bench: no corpus at $CORPUS" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
if [ -n "${TOWERWATCH_BIN:-}" ]; then
    BIN=$TOWERWATCH_BIN
else
    cargo build --release -q -p towerwatch
    BIN=target/release/towerwatch
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# A 100-rule subset spread over every log source: every 24th rule file, sorted.
mkdir -p "$TMP/rules100"
find rules/sigmahq/windows -name '*.yml' | sort | awk 'NR % 24 == 1' | head -100 | while read -r f; do
    cp "$f" "$TMP/rules100/$(echo "$f" | tr / _)"
done
ALL_RULES=$($BIN rules check | sed -n 's/^rules: *[0-9]* (\([0-9]*\) loaded.*/\1/p')
# About 3,000 rules: SigmaHQ's Windows rules with its threat-hunting and emerging-threat sets.
SIGMA=../shared/data/sigma
mkdir -p "$TMP/rules3k"
for d in rules/windows rules-threat-hunting/windows rules-emerging-threats; do
    [ -d "$SIGMA/$d" ] && ln -s "$(realpath "$SIGMA/$d")" "$TMP/rules3k/$(echo "$d" | tr / _)"
done
BIG_RULES=$($BIN rules check "$TMP/rules3k" | sed -n 's/^rules: *[0-9]* (\([0-9]*\) loaded.*/\1/p')
SUB_RULES=$($BIN rules check "$TMP/rules100" | sed -n 's/^rules: *[0-9]* (\([0-9]*\) loaded.*/\1/p')

mkdir -p "$TMP/copies"
for i in $(seq "$COPIES"); do ln -s "$(realpath "$CORPUS")" "$TMP/copies/$i"; done
touch "$TMP/empty.jsonl"

# best_of NAME CMD...: runs CMD $RUNS times; records the best wall seconds, the best CPU
# seconds (user + system: steadier than wall time on a shared machine) and max RSS (KiB).
declare -A WALL CPU RSS
best_of() {
    local name=$1; shift
    local best="" bestcpu="" rss=0
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %U %S %M" -o "$TMP/time" "$@" >/dev/null 2>"$TMP/stderr"
        read -r w u s m < "$TMP/time"
        c=$(awk "BEGIN{print $u + $s}")
        if [ -z "$best" ] || awk "BEGIN{exit !($w < $best)}"; then best=$w; fi
        if [ -z "$bestcpu" ] || awk "BEGIN{exit !($c < $bestcpu)}"; then bestcpu=$c; fi
        [ "$m" -gt "$rss" ] && rss=$m
    done
    WALL[$name]=$best
    CPU[$name]=$bestcpu
    RSS[$name]=$rss
}

events_of() { "$BIN" dump "$1" --format none 2>&1 >/dev/null | sed -n 's/^towerwatch dump: [0-9]* inputs, \([0-9]*\) events.*/\1/p'; }
EVENTS=$(events_of "$CORPUS")
EVENTS_N=$(events_of "$TMP/copies")

best_of startup     "$BIN" hunt "$TMP/empty.jsonl" -q
best_of parse       "$BIN" dump "$CORPUS" --format none -q
best_of dumpjson    "$BIN" dump "$CORPUS" -q
best_of hunt100     "$BIN" hunt "$CORPUS" --rules "$TMP/rules100" -q
best_of huntall     "$BIN" hunt "$CORPUS" -q
best_of parseN      "$BIN" dump "$TMP/copies" --format none -q
best_of hunt100N    "$BIN" hunt "$TMP/copies" --rules "$TMP/rules100" -q
best_of huntallN    "$BIN" hunt "$TMP/copies" -q
best_of hunt3kN      "$BIN" hunt "$TMP/copies" -q --rules "$TMP/rules3k"
# The correlation's cost: with and without it, alternating, so both see the same machine.
pair_of() {
    local a=$1 b=$2 dir=$3
    local wa="" wb="" ca="" cb="" rb=0
    for _ in $(seq "$RUNS"); do
        for which in a b; do
            if [ $which = a ]; then
                /usr/bin/time -f "%e %U %S %M" -o "$TMP/time" "$BIN" hunt "$dir" -q >/dev/null 2>&1
            else
                /usr/bin/time -f "%e %U %S %M" -o "$TMP/time" "$BIN" hunt "$dir" -q --no-operations >/dev/null 2>&1
            fi
            read -r w u s m < "$TMP/time"
            c=$(awk "BEGIN{print $u + $s}")
            if [ $which = a ]; then
                if [ -z "$wa" ] || awk "BEGIN{exit !($w < $wa)}"; then wa=$w; fi
                if [ -z "$ca" ] || awk "BEGIN{exit !($c < $ca)}"; then ca=$c; fi
            else
                if [ -z "$wb" ] || awk "BEGIN{exit !($w < $wb)}"; then wb=$w; fi
                if [ -z "$cb" ] || awk "BEGIN{exit !($c < $cb)}"; then cb=$c; fi
                [ "$m" -gt "$rb" ] && rb=$m
            fi
        done
    done
    WALL[$a]=$wa; CPU[$a]=$ca; WALL[$b]=$wb; CPU[$b]=$cb; RSS[$b]=$rb
}
pair_of withcorr nocorr "$CORPUS"
pair_of withcorrN nocorrN "$TMP/copies"
# The way people run it: with operations, and with the detections written as JSON Lines.
best_of jsonlN      "$BIN" hunt "$TMP/copies" -q --format jsonl -o "$TMP/d.jsonl"
# A simulated operator's Windows events (JSON Lines, Sysmon and Security on every host).
"$BIN" simulate --out "$TMP/sim" ${SIM:---scale 2 --days 28} -q
SIMWIN=$TMP/sim/evidence/windows
EVENTS_S=$(events_of "$SIMWIN")
best_of parseS      "$BIN" dump "$SIMWIN" --format none -q
best_of tableS      "$BIN" hunt "$SIMWIN" -q
best_of jsonlS      "$BIN" hunt "$SIMWIN" -q --format jsonl -o "$TMP/s.jsonl"
best_of nocorrS     "$BIN" hunt "$SIMWIN" -q --no-operations

rate() { awk "BEGIN{printf \"%.0f\", $1 / $2}"; }
ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }
row() { printf "%-44s %6.2f s wall %6.2f s cpu %10s ev/s %7.1f MiB\n" "$1" "${WALL[$2]}" "${CPU[$2]}" "$(rate "$3" "${WALL[$2]}")" "$(awk "BEGIN{print ${RSS[$2]}/1024}")"; }

echo "towerwatch bench: $(nproc) cores, corpus $CORPUS ($(du -sh "$(realpath "$CORPUS")" | cut -f1), $EVENTS events), best of $RUNS runs"
echo
row "parse only (dump --format none)" parse "$EVENTS"
row "dump to JSON Lines" dumpjson "$EVENTS"
row "hunt, $SUB_RULES rules" hunt100 "$EVENTS"
row "hunt, $ALL_RULES rules (embedded SigmaHQ)" huntall "$EVENTS"
printf "%-44s %6.2f s wall %6.2f s cpu\n" "start-up (hunt of an empty file, all rules)" "${WALL[startup]}" "${CPU[startup]}"
echo
echo "corpus x$COPIES ($EVENTS_N events): fixed costs amortized"
row "parse only" parseN "$EVENTS_N"
row "hunt, $SUB_RULES rules" hunt100N "$EVENTS_N"
row "hunt, $ALL_RULES rules" huntallN "$EVENTS_N"
row "hunt, $BIG_RULES rules (+ threat hunting, emerging)" hunt3kN "$EVENTS_N"
echo
echo "ratio hunt(all rules) / parse-only, wall:      $(ratio "${WALL[huntall]}" "${WALL[parse]}")x   (x$COPIES: $(ratio "${WALL[huntallN]}" "${WALL[parseN]}")x; goal <= 1.5x)"
echo "ratio hunt(all rules) / parse-only, cpu:       $(ratio "${CPU[huntall]}" "${CPU[parse]}")x   (x$COPIES: $(ratio "${CPU[huntallN]}" "${CPU[parseN]}")x)"
echo "  detection only (hunt --no-operations), wall: $(ratio "${WALL[nocorr]}" "${WALL[parse]}")x   (x$COPIES: $(ratio "${WALL[nocorrN]}" "${WALL[parseN]}")x)"
echo "  detection only (hunt --no-operations), cpu:  $(ratio "${CPU[nocorr]}" "${CPU[parse]}")x   (x$COPIES: $(ratio "${CPU[nocorrN]}" "${CPU[parseN]}")x)"
echo "throughput hunt(all rules) / hunt($SUB_RULES rules):  $(ratio "${WALL[hunt100]}" "${WALL[huntall]}")    (x$COPIES: $(ratio "${WALL[hunt100N]}" "${WALL[huntallN]}"); flat = 1.00)"
echo "throughput hunt($BIG_RULES rules) / hunt($SUB_RULES rules), x$COPIES: $(ratio "${WALL[hunt100N]}" "${WALL[hunt3kN]}")"
echo "correlation: hunt / hunt --no-operations, wall: $(ratio "${WALL[withcorr]}" "${WALL[nocorr]}")x   (x$COPIES: $(ratio "${WALL[withcorrN]}" "${WALL[nocorrN]}")x; goal <= 1.20x; runs alternate)"
echo "correlation: hunt / hunt --no-operations, cpu:  $(ratio "${CPU[withcorr]}" "${CPU[nocorr]}")x   (x$COPIES: $(ratio "${CPU[withcorrN]}" "${CPU[nocorrN]}")x)"
echo "peak RSS hunt(all rules), x$COPIES:                 $(awk "BEGIN{printf \"%.1f\", ${RSS[huntallN]}/1024}") MiB (detection only: $(awk "BEGIN{printf \"%.1f\", ${RSS[nocorrN]}/1024}") MiB; x1: $(awk "BEGIN{printf \"%.1f\", ${RSS[nocorr]}/1024}") MiB)"
mib() { awk "BEGIN{printf \"%.0f\", ${RSS[$1]}/1024}"; }
echo
echo "the way people run it, with operations (goal: <= 1.5x parse-only and <= 64 MiB):"
printf "  %-40s table %5sx %4s MiB   -o x.jsonl %5sx %4s MiB   (no operations %5sx %4s MiB)\n" \
    "corpus x$COPIES ($EVENTS_N events)" "$(ratio "${WALL[withcorrN]}" "${WALL[parseN]}")" "$(mib huntallN)" \
    "$(ratio "${WALL[jsonlN]}" "${WALL[parseN]}")" "$(mib jsonlN)" \
    "$(ratio "${WALL[nocorrN]}" "${WALL[parseN]}")" "$(mib nocorrN)"
printf "  %-40s table %5sx %4s MiB   -o x.jsonl %5sx %4s MiB   (no operations %5sx %4s MiB)\n" \
    "simulated Windows ($EVENTS_S events)" "$(ratio "${WALL[tableS]}" "${WALL[parseS]}")" "$(mib tableS)" \
    "$(ratio "${WALL[jsonlS]}" "${WALL[parseS]}")" "$(mib jsonlS)" \
    "$(ratio "${WALL[nocorrS]}" "${WALL[parseS]}")" "$(mib nocorrS)"
