#!/usr/bin/env bash
# Runs the whole test suite against a real Kafka-compatible broker (tansu);
# see scripts/with-broker.sh. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
# Real peers the tests check against: promtool (Debian's `prometheus`) lints /metrics.
if ! command -v promtool >/dev/null 2>&1; then
    echo "== installing promtool (Debian package prometheus)"
    apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }
fi
# Prometheus and the blackbox exporter feed slaflow by remote write (tests/prometheus_e2e.rs).
if ! command -v prometheus-blackbox-exporter >/dev/null 2>&1; then
    echo "== installing prometheus-blackbox-exporter (Debian package)"
    apt-get install -y --no-install-recommends prometheus-blackbox-exporter >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus-blackbox-exporter >/dev/null; }
fi
# chromium prints report.html to PDF and screenshots it (tests/evidence_cli.rs).
if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing chromium (Debian package)"
    apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
fi
# Style and lints gate the tests (the house rules: `cargo fmt`, clippy clean).
echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets --features broker-tests -- -D warnings"
cargo clippy --all-targets --features broker-tests --quiet -- -D warnings
# The code-shape rules clippy does not know (issue 30): no span types outside
# config/, no skipped rows, short functions, no import cycles, links in the repo.
echo "== scripts/seams_check.py"
./scripts/seams_check.py
# Tests that need a peer fail instead of skipping when it is missing.
export SLAFLOW_REQUIRE_PEERS=1
# broker-tests: the tests that need the broker started here.
# --no-fail-fast: one CI run reports every failing test binary, not just the first.
status=0
./scripts/with-broker.sh cargo test --all-targets --features broker-tests --no-fail-fast "$@" || status=$?
# Every command of README.md and docs/, as written (it starts its own broker).
echo "== scripts/docs-check.sh"
./scripts/docs-check.sh || status=$?
# Every schemathesis check against a demo's /openapi.json (docs/api.md lists the exceptions).
echo "== scripts/schemathesis.sh"
./scripts/schemathesis.sh 100 || status=$?
exit "$status"
