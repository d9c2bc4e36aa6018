#!/usr/bin/env bash
# The hunt past one machine: events/s end to end (ship --nats → workers → story builder →
# results in PostgreSQL) with 1 and 2 workers, the consumers' lag over the run, and the
# story builder's share of the CPU, against `hunt` on the same files in the same invocation.
# Usage: scripts/bench-fleet.sh      COPIES=N copies of the default simulation's evidence
# (4; each copy's files are new sources, so new events); WORKERS="1 2" the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p towerwatch
exec python3 scripts/bench_fleet.py "$(realpath target/release/towerwatch)" \
    "${COPIES:-4}" ${WORKERS:-1 2}
