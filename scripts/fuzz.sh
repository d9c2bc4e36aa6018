#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/), each for FUZZ_SECONDS (default 60), on nightly.
# Seeds come from the repository's own samples: the regression EVTX and JSON files, W3C and
# Zeek samples, and (for rule_engine) each regression rule joined by a NUL to its sample.
# Usage: scripts/fuzz.sh [TARGET...]   (default: all targets; FUZZ_RUNS=N stops each at N inputs)
# A crash stops the script with the reproducer's path (fuzz/artifacts/TARGET/).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(read_evidence rule_engine db_logs text_logs sql_analysis)
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz
rustup toolchain list | grep -q nightly || { echo "fuzz: no nightly toolchain" >&2; exit 1; }

CORPUS=target/fuzz-corpus
python3 scripts/fuzz-seeds.py "$CORPUS"
for t in "${TARGETS[@]}"; do
    # An EVTX file header and one 64 KiB chunk; the text formats need no more than a few lines to reach
    # every path, and small inputs run many times faster.
    case $t in read_evidence|rule_engine) max_len=69632 ;; sql_analysis) max_len=2048 ;; *) max_len=8192 ;; esac
    max_len=${FUZZ_MAX_LEN:-$max_len}
    echo "fuzz: $t for ${SECONDS_EACH}s"
    log=$CORPUS/$t.log
    status=0
    # No sanitizer by default: our crates forbid unsafe code, and without AddressSanitizer a
    # target runs about five times as many inputs (FUZZ_SANITIZER=address for the other).
    cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer "${FUZZ_SANITIZER:-none}" "$t" "$CORPUS/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -max_len="$max_len" \
        ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done' "$log" || true
    if [ "$status" -ne 0 ]; then
        # libFuzzer saved the failing input under fuzz/artifacts/$t/.
        tail -40 "$log" >&2
        echo "fuzz: $t failed (exit $status); reproducer in fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
