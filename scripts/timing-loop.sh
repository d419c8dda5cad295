#!/usr/bin/env bash
# Runs the timing-sensitive broker tests N times in a row (default 10) against
# one real broker, stopping at the first failure: the check that they are not
# flaky on a small machine (issue 32). The test executables are built once,
# then run directly, so edits made meanwhile do not change what runs.
#   Usage: scripts/timing-loop.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
runs="${1:-10}"
tests=(prometheus_e2e live_vs_replay kafka_live integrations shutdown)
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done
mapfile -t bins < <(cargo test --features broker-tests --no-run --message-format=json "${args[@]}" 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])')
[ "${#bins[@]}" -eq "${#tests[@]}" ] || { echo "expected ${#tests[@]} test executables, got ${#bins[@]}"; exit 1; }
# shellcheck disable=SC2016
exec ./scripts/with-broker.sh bash -c '
runs=$1; shift
for i in $(seq 1 "$runs"); do
    for bin in "$@"; do
        started=$(date +%s)
        if ! out=$("$bin" 2>&1); then
            echo "run $i: $(basename "$bin") FAILED"; echo "$out" | tail -60; exit 1
        fi
        echo "run $i: $(basename "$bin") ok ($(( $(date +%s) - started )) s)"
    done
done
echo "all $runs runs passed"' timing-loop "$runs" "${bins[@]}"
