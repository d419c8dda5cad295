#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 600), two at a time,
# starting from the corpus kept in fuzz/corpus (new interesting inputs go to a
# scratch corpus; copy the few worth keeping into fuzz/corpus by hand).
#   Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs cargo-fuzz (installed here when missing). The toolchain is stable, so
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its sanitizer-coverage flags; no
# AddressSanitizer (-s none): safe Rust, and what is looked for is panics
# (a dev build: overflow checks on),
# aborts, stack overflows and runaway memory (libFuzzer's -rss_limit_mb).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-fuzz-target}"
export RUSTC_BOOTSTRAP=1
seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decode_record alertmanager jira config checkpoint)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
if [ ! -e fuzz/corpus/checkpoint/seed-monitoring ]; then
    CARGO_TARGET_DIR="${SLAFLOW_TARGET:-$HOME/.cache/slaflow-target}" \
        cargo test --lib write_fuzz_seeds -- --ignored
fi
for t in "${targets[@]}"; do cargo fuzz build -s none --dev "$t"; done
scratch=$(mktemp -d)
status=0
run() {
    local t=$1
    mkdir -p "$scratch/$t"
    echo "== fuzzing $t for ${seconds}s"
    if cargo fuzz run -s none --dev "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        > "$scratch/$t.log" 2>&1; then
        echo "== $t: $(grep -E '^Done|stat::number_of_executed_units' "$scratch/$t.log" | tail -1)"
    else
        echo "== $t FAILED; its log and crash input:"; tail -40 "$scratch/$t.log"; return 1
    fi
}
pids=()
for t in "${targets[@]}"; do
    run "$t" & pids+=($!)
    if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}" || status=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
echo "scratch corpus and logs: $scratch"
exit $status
