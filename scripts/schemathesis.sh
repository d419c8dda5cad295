#!/usr/bin/env bash
# Runs schemathesis (from PyPI, in a venv under ~/.cache) against the OpenAPI
# document of a running `slaflow demo`, with the demo's admin token: every check
# (`--checks all`: no 5xx, answers match the document, schema-valid requests
# accepted and schema-violating ones refused), with the exceptions in
# scripts/schemathesis.toml, each explained in docs/api.md.
#   Usage: scripts/schemathesis.sh [MAX_EXAMPLES]   (default 200 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
venv="$HOME/.cache/slaflow-schemathesis"
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'schemathesis>=4,<5'
fi
cargo build --quiet
log=$(mktemp)
"$CARGO_TARGET_DIR/debug/slaflow" demo --listen 127.0.0.1:0 --history-days 1 >"$log" 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null || true; wait $demo 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 300); do
    grep -q "Tokens:" "$log" && break
    sleep 0.2
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1)
token=$(sed -n 's/.*Tokens: *admin *\([^ ]*\).*/\1/p' "$log" | head -1)
[ -n "$url" ] && [ -n "$token" ] || { echo "demo did not start:"; cat "$log"; exit 1; }
echo "== schemathesis against $url/openapi.json"
"$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run "$url/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --exclude-path /v1/ingest/prometheus --exclude-path /v1/ingest/github \
    --max-examples "${1:-200}" \
    --request-timeout 40 \
    --suppress-health-check all
