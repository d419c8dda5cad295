#!/usr/bin/env bash
# Runs the whole test suite against a real Kafka-compatible broker (tansu);
# see scripts/with-broker.sh. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
# broker-tests: the tests that need the broker started here.
# --no-fail-fast: one CI run reports every failing test binary, not just the first.
exec ./scripts/with-broker.sh cargo test --all-targets --features broker-tests --no-fail-fast "$@"
