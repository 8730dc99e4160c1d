#!/usr/bin/env bash
# Foundation figures, measured in one run on this machine:
#   - /health requests per second of otto-api (release, embedded mode) with wrk -t2 -c64 -d10s,
#     next to a bare actix-web hello-world (tools/hello-actix) measured the same way;
#   - idle RSS of otto-api in embedded mode after start-up.
# Usage: scripts/bench_foundation.sh [duration=10s]   (CARGO_TARGET_DIR and SKIP_BUILD=1 honoured)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }

target=$(realpath "${CARGO_TARGET_DIR:-target}")
# SKIP_BUILD=1 measures binaries already built in $target/release.
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin otto-api --bin hello-actix >&2
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
rps() { wrk -t2 -c64 -d"$duration" "$1" | awk '/Requests\/sec/ {print $2}'; }

api_port=$(free_port)
(cd "$work" && DATABASE_URL="sqlite://$work/bench.db?mode=rwc" PORT=$api_port LOG_LEVEL=warn \
  exec "$target/release/otto-api") &
api_pid=$!
wait_http "http://127.0.0.1:$api_port/health"
sleep 3
rss_kb=$(ps -o rss= -p "$api_pid" | tr -d ' ')

hello_port=$(free_port)
"$target/release/hello-actix" "$hello_port" &
wait_http "http://127.0.0.1:$hello_port/"

# The machine is shared and noisy: alternate the two servers for $rounds rounds and compare the
# medians, so a burst of outside load does not land on one side only.
rounds=${ROUNDS:-3}
hello_runs=()
api_runs=()
for _ in $(seq 1 "$rounds"); do
  hello_runs+=("$(rps "http://127.0.0.1:$hello_port/")")
  api_runs+=("$(rps "http://127.0.0.1:$api_port/health")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
hello_rps=$(median "${hello_runs[@]}")
api_rps=$(median "${api_runs[@]}")
ratio=$(python3 -c "print(f'{100*$api_rps/$hello_rps:.1f}')")

echo "otto-api idle RSS (embedded, after start-up): $((rss_kb / 1024)) MB ($rss_kb KB); goal < 40 MB"
echo "bare actix-web hello-world: $hello_rps req/s (median of ${hello_runs[*]}; wrk -t2 -c64 -d$duration each)"
echo "otto-api /health:           $api_rps req/s (median of ${api_runs[*]}; wrk -t2 -c64 -d$duration each)"
echo "otto-api / hello-world:     $ratio %; goal >= 80 %"
