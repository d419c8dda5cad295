#!/usr/bin/env bash
# Builds a release binary and prints the benchmark table: heap bytes per
# ticket and per source (benches/memory.rs), the replay-vs-DuckDB rows
# (scripts/bench-peer.sh), the release binary's size (and, asked for, the
# profile-guided build's rows), then `slaflow bench` with the live rows
# (through a tansu broker started by scripts/with-broker.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
# Heap bytes per ticket and per source, counted by the bench's own allocator.
# First: `cargo bench` builds the binary too, with the dev-dependencies'
# features, over `release/slaflow`; the release build after it restores the
# binary a user builds, which bench-peer.sh then finds up to date (in the
# other order the release binary was linked twice, ~25 min each here).
cargo bench --bench memory --quiet
cargo build --release
./scripts/bench-peer.sh
# A binary's size as a table row: what it is, its path.
size_row() {
    echo "| $1 | $(python3 -c "print(f'{$(stat -c %s "$2") / 1e6:.1f}')") MB | ≤ 200 MB |"
}
# The binary a user builds and ships (issue 29: at most 200 MB).
size_row "release binary (\`cargo build --release\`)" "$CARGO_TARGET_DIR/release/slaflow"
# With SLAFLOW_BENCH_PGO=1, the profile-guided build too (scripts/build-pgo.sh:
# two more full builds, about an hour on 2 cores): its DuckDB rows, parse
# only and size.
if [ "${SLAFLOW_BENCH_PGO:-}" = 1 ]; then
    pgo=$(./scripts/build-pgo.sh)
    SLAFLOW_BIN="$pgo" ./scripts/bench-peer.sh
    taskset -c 0 "$pgo" bench --only decode
    size_row "profile-guided binary (\`scripts/build-pgo.sh\`)" "$pgo"
fi
# slaflow run's live loop on an in-process mock broker, on one core (the
# table below has it on all cores).
taskset -c 0 "$CARGO_TARGET_DIR/release/slaflow" bench --only live-mock
exec ./scripts/with-broker.sh sh -c '"$CARGO_TARGET_DIR/release/slaflow" bench --brokers "$SLAFLOW_TEST_BROKERS" "$@"' bench "$@"
