#!/usr/bin/env bash
# Replay against a peer, side by side in one run (issue 14): `slaflow replay`
# of a generated week and DuckDB (from PyPI, in a venv outside the clone)
# answering the availability question of the same monitoring file, both pinned
# to one core (`taskset -c 0`), median of 5 each. Prints Markdown table rows.
# `SLAFLOW_BIN` names another binary to measure (scripts/build-pgo.sh's); by
# default the release build, built first.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
venv="${SLAFLOW_BENCH_VENV:-$HOME/.cache/slaflow-bench-venv}"
bin="${SLAFLOW_BIN:-}"
if [ -z "$bin" ]; then
    cargo build --release --quiet
    bin="$CARGO_TARGET_DIR/release/slaflow"
fi
if ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet duckdb
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" generate --out "$work/week" >/dev/null
mon="$work/week/monitoring-0.ndjson"
lines=$(cat "$mon" "$work/week/tickets.ndjson" | wc -l)
# Wall time of one replay, in seconds (python3 for the clock and the arithmetic).
replay_once() {
    python3 - "$bin" "$work" <<'PY'
import subprocess, sys, time
bin, work = sys.argv[1], sys.argv[2]
t = time.perf_counter()
subprocess.run(["taskset", "-c", "0", bin, "replay", "--config", f"{work}/week/config.toml",
                "--monitoring", f"{work}/week/monitoring-0.ndjson", "--tickets", f"{work}/week/tickets.ndjson",
                "--out", f"{work}/out", "--now", "2026-12-01"], check=True, capture_output=True)
print(f"{time.perf_counter() - t:.3f}")
PY
}
slaflow_s=$( (for _ in 1 2 3 4 5; do replay_once; done) | sort -n | sed -n 3p)
read -r duck_s duck_rows < <(taskset -c 0 "$venv/bin/python" scripts/peer_duckdb.py "$mon" 120000)
duck_version=$("$venv/bin/python" -c 'import duckdb; print(duckdb.__version__)')
ratio=$(python3 -c "print(f'{$duck_s / $slaflow_s:.2f}')")
echo "| slaflow replay${SLAFLOW_BIN:+ ($bin)}, generated week ($lines lines, both topics), 1 core, median of 5 | $(printf '%.3f' "$slaflow_s") s | ≥ 2× DuckDB's speed |"
echo "| DuckDB $duck_version, 1 thread: availability per service and source ($duck_rows rows), median of 5 | $(printf '%.3f' "$duck_s") s | |"
echo "| slaflow speed relative to DuckDB | ${ratio}× | ≥ 2× |"
