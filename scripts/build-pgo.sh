#!/usr/bin/env bash
# Builds a profile-guided release binary (issue 29) and prints its path:
# 1. a release build instrumented with `-Cprofile-generate`;
# 2. a training run of it: `slaflow replay` of a generated week with seed 2
#    (the benchmarks replay seed 1, so they do not measure their own
#    training data);
# 3. the profiles merged by the toolchain's `llvm-profdata`
#    (`rustup component add llvm-tools-preview`, done here when missing);
# 4. the release build again with `-Cprofile-use`.
# Each build has its own target directory beside `CARGO_TARGET_DIR`: the
# flags apply to every crate, so in the plain one they would rebuild it all.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
find_profdata() { find "$(rustc --print sysroot)/lib/rustlib" -name llvm-profdata -type f -print -quit; }
profdata=$(find_profdata)
if [ -z "$profdata" ]; then
    rustup component add llvm-tools-preview >&2
    profdata=$(find_profdata)
fi
# A fixed profile directory keeps the flags, and so the build, the same
# from one run to the next; the build's own scripts write profiles there
# too, so it is emptied before training.
raw="$target-pgo-generate/profiles"
RUSTFLAGS="-Cprofile-generate=$raw" CARGO_TARGET_DIR="$target-pgo-generate" \
    cargo build --release --quiet
rm -rf "$raw"
trained="$target-pgo-generate/release/slaflow"
"$trained" generate --seed 2 --out "$work/week" >/dev/null
"$trained" replay --config "$work/week/config.toml" \
    --monitoring "$work/week/monitoring-0.ndjson" --tickets "$work/week/tickets.ndjson" \
    --out "$work/out" --now 2026-12-01 >/dev/null
"$profdata" merge -o "$work/merged.profdata" "$raw"
# Named by content: cargo does not track the file, so new profiles must
# change the flags to rebuild.
mkdir -p "$target-pgo"
merged="$target-pgo/$(sha256sum "$work/merged.profdata" | cut -c1-16).profdata"
cp "$work/merged.profdata" "$merged"
RUSTFLAGS="-Cprofile-use=$merged" CARGO_TARGET_DIR="$target-pgo" \
    cargo build --release --quiet
echo "$target-pgo/release/slaflow"
