#!/usr/bin/env bash
# Runs every check and test of towerwatch. Installs what the tests need when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# The simulator's pgaudit test runs a real PostgreSQL with pgaudit.
if ! ls /usr/lib/postgresql/*/lib/pgaudit.so >/dev/null 2>&1; then
    need_apt+=(postgresql postgresql-15-pgaudit)
fi
# The report test opens the HTML report in a real headless browser.
if ! command -v chromium >/dev/null 2>&1; then
    need_apt+=(chromium)
fi
# The scale-out test runs a real nats-server with JetStream.
if ! command -v nats-server >/dev/null 2>&1; then
    need_apt+=(nats-server)
fi
if ((${#need_apt[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

echo "== fmt"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --release -- -D warnings
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --release --no-fail-fast
    cargo test --workspace --release --doc
else
    cargo test --workspace --release --no-fail-fast
fi
echo "== fuzz (a short run of each target; scripts/fuzz.sh runs longer ones)"
if rustup toolchain list 2>/dev/null | grep -q nightly; then
    FUZZ_SECONDS=${FUZZ_SECONDS:-15} scripts/fuzz.sh
else
    echo "no nightly toolchain: fuzz run skipped"
fi
