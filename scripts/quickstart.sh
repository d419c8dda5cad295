#!/usr/bin/env bash
# A live slaflow in one command, without Docker: starts tansu (a Kafka-compatible
# broker; installed by `cargo install` when missing) on a free port, creates the
# topics, runs `slaflow run` on a generated config with fresh tokens, and posts
# generated traffic to its ingest API: the history at once, then each record as
# the wall clock reaches its time. Ctrl-C (or SIGTERM) stops slaflow cleanly,
# then the broker.
#
#   Usage: scripts/quickstart.sh [--history-days N] [--listen ADDR] [--dir DIR]
#
# Everything it writes (config, traffic, tokens, logs, checkpoints) goes to DIR
# (default: a new temporary folder), which it prints.
set -euo pipefail
cd "$(dirname "$0")/.."

# The broker first: scripts/with-broker.sh runs this script again next to it.
if [ "${1:-}" != "--next-to-broker" ]; then
    exec ./scripts/with-broker.sh "$0" --next-to-broker "$@"
fi
shift

history_days=2
listen=""
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --history-days) history_days="$2"; shift 2 ;;
        --listen) listen="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        *) echo "quickstart: unknown option $1 (see the top of $0)" >&2; exit 2 ;;
    esac
done
dir="${dir:-$(mktemp -d -t slaflow-quickstart.XXXXXX)}"
mkdir -p "$dir"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
if [ -z "$listen" ]; then
    if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
        listen="127.0.0.1:$(free_port)"
    else
        listen="127.0.0.1:8080"
    fi
fi

echo "== building slaflow (cargo build; the first build takes several minutes)"
cargo build --quiet
slaflow="$CARGO_TARGET_DIR/debug/slaflow"

# History up to now, and one more day that the feeder posts as its time comes.
start=$(date -u -d "-$history_days days" +%Y-%m-%dT%H:%M:00Z)
"$slaflow" generate --out "$dir" --days "$((history_days + 1))" --start "$start" >/dev/null
"$slaflow" token >"$dir/admin.token.txt"
"$slaflow" token --scope ingest >"$dir/ingest.token.txt"
admin=$(head -n 1 "$dir/admin.token.txt")
ingest=$(head -n 1 "$dir/ingest.token.txt")
config="$dir/config.toml"
sed -i "s|^\[engine\]$|[engine]\ndata_dir = \"$dir/data\"|" "$config"
{
    echo
    echo "[kafka]"
    echo "brokers = \"$SLAFLOW_TEST_BROKERS\""
    echo "[api]"
    echo "listen = \"$listen\""
    tail -n +4 "$dir/admin.token.txt"
    tail -n +4 "$dir/ingest.token.txt"
} >>"$config"

echo "== slaflow run --config $config (log: $dir/run.log)"
"$slaflow" run --config "$config" 2>"$dir/run.log" &
run=$!
feeder=""
stop() {
    trap - INT TERM
    [ -n "$feeder" ] && kill "$feeder" 2>/dev/null
    kill -TERM "$run" 2>/dev/null || true
    wait "$run" && echo "== slaflow run stopped" || echo "== slaflow run exited $? (log: $dir/run.log)"
    exit 0
}
trap stop INT TERM
for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$listen/readyz")" = 200 ] && break
    kill -0 "$run" 2>/dev/null || { echo "slaflow run exited:"; cat "$dir/run.log"; exit 1; }
    sleep 0.2
done

python3 scripts/quickstart_feed.py "http://$listen/v1/ingest/events" "$ingest" "$admin" \
    "$dir"/monitoring-*.ndjson "$dir/tickets.ndjson" &
feeder=$!

cat <<EOF

  slaflow run is live on Kafka (tansu at $SLAFLOW_TEST_BROKERS), fed with generated traffic.
  Dashboard:  http://$listen/#token=$admin
  Tokens:     admin  $admin
              ingest $ingest
  Try:        curl -H 'Authorization: Bearer $admin' 'http://$listen/v1/reports/sla?customer=acme'
  Files:      $dir (config.toml, traffic, run.log)
  Ctrl-C stops slaflow, then the broker.

EOF
wait "$run" || { echo "slaflow run exited; log:"; tail -n 20 "$dir/run.log"; exit 1; }
