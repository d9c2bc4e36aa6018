#!/usr/bin/env bash
# The live service's speed: sustained ingest over HTTP (events/s), the time from sending a
# batch to its detections being readable (p50, p99), and the server's memory over the run,
# against `hunt` on the same corpus in the same invocation (the batch rate as the baseline).
# Usage: scripts/bench-serve.sh            EVENTS=N (default 5,000,000) events are sent:
# a simulated operator's Windows events (SIM="--days 9 --waves 2 --scale 1"), its files sent
# again as their sources' later lines until EVENTS is reached (each copy is new to the store;
# its events come late to the live hunt, which takes them all the same).
# BATCH=N lines per request (5,000); SENDERS=N shippers sending side by side (3);
# LATENESS=S the live hunt's lateness (60 s).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-5000000}
BATCH=${BATCH:-5000}
LATENESS=${LATENESS:-60}
SENDERS=${SENDERS:-3}
SIM=${SIM:---days 9 --waves 2 --scale 1}
cargo build --release -q -p towerwatch
BIN=$(realpath target/release/towerwatch)
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
TMP=$(mktemp -d)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# shellcheck disable=SC2086
"$BIN" simulate $SIM --out "$TMP/sim" -q
CORPUS=$TMP/sim/evidence/windows
CORPUS_EVENTS=$(cat "$CORPUS"/*.jsonl | wc -l)
# The baseline: hunt on the corpus ten times over (a run of a second or two, not a blip).
mkdir -p "$TMP/copies"
for i in $(seq 10); do ln -s "$CORPUS" "$TMP/copies/$i"; done
/usr/bin/time -f "%e %M" -o "$TMP/hunt.time" "$BIN" hunt "$TMP/copies" -q -o "$TMP/hunt.jsonl" >/dev/null
read -r HUNT_SECONDS HUNT_RSS < "$TMP/hunt.time"

TOKEN=$("$BIN" serve --data "$TMP/data" init | grep -o 'tw_[^ ]*')
"$BIN" serve --data "$TMP/data" --listen 127.0.0.1:0 --lateness "$LATENESS" > "$TMP/serve.out" 2>"$TMP/serve.err" &
SERVER=$!
for _ in $(seq 100); do grep -q listening "$TMP/serve.out" && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*' "$TMP/serve.out")
if [ -n "${PERF:-}" ]; then perf record -F 499 -g -p "$SERVER" -o "$PERF" 2>/dev/null & fi

echo "bench-serve: $CORPUS_EVENTS events in the corpus ($SIM), sending $EVENTS in batches of $BATCH from $SENDERS shippers to $URL"
cpu() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
CPU0=$(cpu)
python3 scripts/bench_serve_client.py --url "$URL" --token "$TOKEN" --corpus "$CORPUS" \
    --events "$EVENTS" --batch "$BATCH" --senders "$SENDERS" --pid "$SERVER" --out "$TMP/client.json" --data "$TMP/data"
CPU1=$(cpu)
python3 - "$TMP/client.json" "$HUNT_SECONDS" "$HUNT_RSS" "$((CORPUS_EVENTS * 10))" "$((CPU1 - CPU0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
server_cpu = int(sys.argv[5]) / int(sys.argv[6])
hunt_s, hunt_rss, corpus = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
hunt_rate = corpus / hunt_s
print(f"ingest over HTTP   {c['events']:>10,} events in {c['seconds']:.1f} s = {c['rate']:,.0f} events/s "
      f"({c['rate'] / hunt_rate:.2f}x hunt's {hunt_rate:,.0f} events/s on the corpus x10 as files)")
print(f"batch to readable  p50 {c['p50'] * 1000:.0f} ms, p99 {c['p99'] * 1000:.0f} ms over {c['samples']} sampled batches")
print(f"server RSS         peak {c['rss_peak'] / 1024:.0f} MiB; at 25/50/75/100 % of the run "
      + " / ".join(f"{r / 1024:.0f}" for r in c['rss_quarters']) + " MiB"
      f" (hunt on the corpus x10: {hunt_rss / 1024:.0f} MiB)")
print(f"server CPU         {server_cpu:.1f} s = {server_cpu / c['events'] * 1e6:.1f} us per event "
      f"({server_cpu / c['seconds']:.2f} cores busy)")
print(f"live detections    {c['detections']:,}; store {c['store_mib']:.0f} MiB on disk")
PY
