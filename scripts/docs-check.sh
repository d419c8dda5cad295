#!/usr/bin/env bash
# Runs every command in the ```sh blocks of README.md and docs/*.md as written,
# in document order, each Markdown file in a fresh folder, with the built
# `slaflow` on PATH, and checks what each prints. A command this script does
# not know how to run fails it, so the docs cannot drift from what works.
#
# Long-running commands get a handler: the demo, `slaflow run` and the
# quickstart are started, checked (the printed URL and token answer a report),
# then stopped with the signal the docs name; the ingest `curl` goes to a demo.
# Not run here: ./scripts/test.sh (it runs this script) and the benchmark
# scripts (a release build and minutes of measurement; docs/performance.md).
#
#   Usage: scripts/docs-check.sh        (scripts/test.sh calls it)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
cargo build --quiet
export PATH="$CARGO_TARGET_DIR/debug:$PATH"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Handlers run in subshells: failures are counted in a file.
fail() { echo "FAIL  $1: $2" | tee -a "$scratch/failures"; }

# "file<TAB>command" for each command of an sh block: `\` continuations
# joined, comments after two spaces dropped.
commands() {
    awk -v F="$1" '
        /^```/ { if (inb) { inb = 0 } else if ($0 ~ /^```(sh|bash)$/) { inb = 1 }; next }
        inb {
            line = $0; sub(/  +#.*$/, "", line); sub(/^[ \t]+/, "", line)
            if (line ~ /\\$/) { sub(/\\$/, "", line); acc = acc line; next }
            acc = acc line
            if (acc != "") print F "\t" acc
            acc = ""
        }' "$1"
}

# Waits up to $2 seconds for a line of file $1 matching $3; prints it.
wait_line() {
    for _ in $(seq 1 $(($2 * 5))); do
        grep -m1 -E "$3" "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# Starts a long-running command in its own session (so a signal reaches all of
# it), logging to $dir/long.log; sets $long. A background job starts with
# SIGINT ignored, which a terminal's Ctrl-C never does: env restores it.
start_long() {
    setsid env --default-signal=INT bash -c "$1" >"$dir/long.log" 2>&1 &
    long=$!
}

# Sends signal $1 to the long-running command's session; true when it then
# exits 0 within 60 s.
stopped_cleanly() {
    kill "-$1" -- "-$long" 2>/dev/null || true
    for _ in $(seq 1 300); do
        if ! kill -0 "$long" 2>/dev/null; then
            wait "$long"
            return
        fi
        sleep 0.2
    done
    kill -KILL -- "-$long" 2>/dev/null || true
    return 1
}

# A printed "Try: curl …" line answers an SLA report with services.
report_answers() {
    local try
    try=$(wait_line "$dir/long.log" 600 'Try: +curl') || return 1
    eval "${try#*Try:}" >"$dir/report.json" 2>/dev/null || return 1
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["services"] else 1)' "$dir/report.json"
}

check_demo() {
    start_long "$1"
    report_answers || fail "$where" "the printed curl did not answer a report: $(tail -n 5 "$dir/long.log")"
    # The README's sample banner: its record count stays within 10 % of a run's.
    local shown counted
    shown=$(grep -oE '^  [0-9]+ records in' "$repo/README.md" | grep -oE '[0-9]+')
    counted=$(grep -oE '^  [0-9]+ records in' "$dir/long.log" | grep -oE '[0-9]+')
    [ -n "$counted" ] && [ $((counted * 10)) -ge $((shown * 9)) ] && [ $((counted * 10)) -le $((shown * 11)) ] \
        || fail "$where" "the README shows $shown records, the demo generated ${counted:-none}"
    stopped_cleanly TERM || fail "$where" "did not stop cleanly on SIGTERM"
}

check_quickstart() {
    start_long "$1"
    report_answers || fail "$where" "the printed curl did not answer a report: $(tail -n 5 "$dir/long.log")"
    wait_line "$dir/long.log" 120 'history posted' >/dev/null || fail "$where" "no history posted"
    stopped_cleanly INT || fail "$where" "did not stop cleanly on Ctrl-C: $(tail -n 5 "$dir/long.log")"
    grep -q 'slaflow run stopped' "$dir/long.log" || fail "$where" "slaflow run did not stop cleanly"
}

# `slaflow run` as written: its API comes up, it says whether the brokers of
# its config answer (none does on 127.0.0.1:9092 here), and SIGTERM stops it.
check_run() {
    start_long "$1"
    wait_line "$dir/long.log" 60 'API listening' >/dev/null || fail "$where" "no API: $(tail -n 5 "$dir/long.log")"
    wait_line "$dir/long.log" 60 'cannot reach the Kafka brokers|slaflow run started' >/dev/null \
        || fail "$where" "nothing about the brokers: $(tail -n 5 "$dir/long.log")"
    stopped_cleanly TERM || fail "$where" "did not stop cleanly on SIGTERM"
}

# The ingest example: TOKEN and events.ndjson as its text says, against a demo
# on the address it names.
check_ingest_curl() {
    start_long "slaflow demo --history-days 1"
    local token
    token=$(wait_line "$dir/long.log" 120 'Tokens:' | awk '{print $3}')
    printf '%s\n' "{\"event_id\":\"docs-1\",\"ts\":$(date +%s)000,\"service\":\"web\",\"kind\":\"probe\",\"source\":\"docs\",\"status\":\"up\"}" >events.ndjson
    local out
    out=$(TOKEN="$token" bash -c "$1" 2>&1) || true
    [[ "$out" == *'"accepted":1'* ]] || fail "$where" "answered: $out"
    stopped_cleanly TERM || fail "$where" "demo did not stop cleanly"
}

# Any other command: exit 0, and what its subcommand promises.
check_plain() {
    local out err
    out="$dir/out.txt" err="$dir/err.txt"
    local status=0
    bash -c "$1" >"$out" 2>"$err" || status=$?
    if [ "$status" != 0 ]; then
        fail "$where" "exit $status: $(tail -n 3 "$err")"
        return
    fi
    case "$1" in
        "slaflow verify"*) grep -qx verified "$out" || fail "$where" "printed $(cat "$out")" ;;
        "slaflow replay"*) [ ! -s "$err" ] || fail "$where" "stderr: $(cat "$err")" ;;
        "slaflow generate --out data --days 7")
            # The README states the week's size: keep it true.
            local claimed printed
            claimed=$(grep -o 'a week from [0-9-]* ([0-9,]* lines' "$repo/README.md" | sed 's/.*(//; s/[, a-z]//g')
            printed=$(cat "$out")
            [[ "$printed" =~ ^generate:\ ([0-9]+)\ monitoring\ and\ ([0-9]+)\ ticket ]] \
                && [ "$claimed" = $((BASH_REMATCH[1] + BASH_REMATCH[2])) ] \
                || fail "$where" "the README says $claimed lines; generate printed: $printed" ;;
    esac
}

for doc in README.md docs/*.md; do
    dir="$scratch/$(basename "$doc" .md)"
    mkdir -p "$dir"
    ln -s "$repo/deploy" "$dir/deploy"
    while IFS=$'\t' read -r file cmd; do
        where="$file: $cmd"
        case "$cmd" in
            "./scripts/test.sh"*) echo "skip  $where (runs this script)"; continue ;;
            "./scripts/bench.sh"* | "./scripts/bench-peer.sh"*)
                echo "skip  $where (benchmark: release build, minutes)"; continue ;;
        esac
        echo "run   $where"
        case "$cmd" in
            "cargo run -- demo"*) (cd "$repo" && check_demo "$cmd") ;;
            "slaflow demo"*) (cd "$dir" && check_demo "$cmd") ;;
            "./scripts/quickstart.sh"*) (cd "$repo" && check_quickstart "$cmd") ;;
            "slaflow run "*) (cd "$dir" && check_run "$cmd") ;;
            "curl "*"/v1/ingest/events"*) (cd "$dir" && check_ingest_curl "$cmd") ;;
            "slaflow "* | "mv "* | "cp "*) (cd "$dir" && check_plain "$cmd") ;;
            *) fail "$where" "docs-check does not know how to run this; teach it or reword the docs" ;;
        esac
    done < <(commands "$doc")
done
if [ -s "$scratch/failures" ]; then
    echo "docs-check: $(grep -c "^FAIL" "$scratch/failures") failed"
    exit 1
fi
echo "docs-check: every command ran as written"
