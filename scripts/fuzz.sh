#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/), each for FUZZ_SECONDS (default 60), on nightly.
# Seeds come from the repository's own samples: the regression EVTX and JSON files, W3C and
# Zeek samples, and (for rule_engine) each regression rule joined by a NUL to its sample.
# Usage: scripts/fuzz.sh [TARGET...]   (default: all targets)
# A crash stops the script with the reproducer's path (fuzz/artifacts/TARGET/).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(read_evidence rule_engine)
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz
rustup toolchain list | grep -q nightly || { echo "fuzz: no nightly toolchain" >&2; exit 1; }

CORPUS=target/fuzz-corpus
python3 scripts/fuzz-seeds.py "$CORPUS"
for t in "${TARGETS[@]}"; do
    echo "fuzz: $t for ${SECONDS_EACH}s"
    log=$CORPUS/$t.log
    status=0
    cargo +nightly fuzz run --fuzz-dir fuzz "$t" "$CORPUS/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -max_len=262144 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done' "$log" || true
    if [ "$status" -ne 0 ]; then
        # libFuzzer saved the failing input under fuzz/artifacts/$t/.
        tail -40 "$log" >&2
        echo "fuzz: $t failed (exit $status); reproducer in fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
