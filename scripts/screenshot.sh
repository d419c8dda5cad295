#!/usr/bin/env bash
# Takes a screenshot of the dashboard served by `slaflow demo` in headless Chromium.
# Usage: scripts/screenshot.sh [OUT.png]   (needs Debian's `chromium`)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dashboard.png}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slaflow-target}"
command -v chromium >/dev/null || { echo "install chromium first: apt-get install -y chromium"; exit 1; }
cargo build --quiet
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
"$CARGO_TARGET_DIR/debug/slaflow" demo --listen "127.0.0.1:$port" >"$log" 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null || true; wait $demo 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 120); do grep -q "Dashboard:" "$log" && break; sleep 0.5; done
url=$(grep -o 'http://[^ ]*#token=[^ ]*' "$log" | head -1)
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1440,2200 \
    --virtual-time-budget=8000 --screenshot="$out" "$url" 2>/dev/null
rm -rf "$profile"
echo "screenshot: $out"
