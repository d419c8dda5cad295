#!/usr/bin/env bash
# Runs a command next to a real Kafka-compatible broker (tansu): installs tansu
# when missing, starts it on a free loopback port with the sqlite storage engine,
# creates the topics, exports SLAFLOW_TEST_BROKERS, runs "$@", and always stops
# the broker.   Usage: scripts/with-broker.sh COMMAND [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v tansu >/dev/null 2>&1; then
    echo "== installing tansu (Kafka-compatible broker; ~10 minutes, once)"
    cargo install --locked tansu --features dynostore,libsql
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
workdir=$(mktemp -d)
url="tcp://127.0.0.1:$port"
echo "== starting tansu on $url (data in $workdir)"
# tansu resolves sqlite:// paths relative to its working directory.
# setsid: Ctrl-C in the terminal reaches the command, which stops first; the
# broker stops after it (cleanup), so a clean shutdown can still commit.
# The group coordinator's info lines (members joining, leaders, missed
# heartbeats) are kept: a failing run prints them.
(cd "$workdir" && RUST_LOG="warn,tansu_broker::coordinator::group=info" exec setsid tansu broker --listener-url "$url" --advertised-listener-url "$url" \
    --storage-engine "sqlite://tansu.db" >"$workdir/tansu.log" 2>&1) &
broker=$!
cleanup() {
    kill "$broker" 2>/dev/null || true
    wait "$broker" 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$broker" 2>/dev/null; then
        echo "tansu exited early:"; cat "$workdir/tansu.log"; exit 1
    fi
    sleep 0.2
done
for topic in monitoring.events tickets.events sla.incidents sla.deadletter; do
    tansu topic create --broker "$url" --partitions 4 "$topic" >/dev/null
done

export SLAFLOW_TEST_BROKERS="127.0.0.1:$port"
echo "== $* (broker $SLAFLOW_TEST_BROKERS)"
status=0
"$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "== the broker's last log lines (tansu, group coordinator at info)"
    sed 's/\x1b\[[0-9;]*m//g' "$workdir/tansu.log" | grep -v 'BrokenPipe\|TopicAlreadyExists' | tail -n 60
fi
exit "$status"
