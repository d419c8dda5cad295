#!/usr/bin/env bash
# Builds a release binary and prints the benchmark table: the replay-vs-DuckDB
# rows (scripts/bench-peer.sh), then `slaflow bench` with the live rows
# (through a tansu broker started by scripts/with-broker.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
cargo build --release
./scripts/bench-peer.sh
exec ./scripts/with-broker.sh sh -c '"$CARGO_TARGET_DIR/release/slaflow" bench --brokers "$SLAFLOW_TEST_BROKERS" "$@"' bench "$@"
