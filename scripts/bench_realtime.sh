#!/usr/bin/env bash
# Real-time figures, one otto-api process (release): N authenticated WebSocket connections across
# 100 tenant channels, test events at a fixed rate; prints connection set-up rate, RSS per
# connection, delivered messages per second and publish-to-receive latency p50/p99.
# Run twice by default: embedded bus, then the Redis bus.
# Usage: scripts/bench_realtime.sh [connections=10000] [events_per_second=1000] [seconds=10]
# PIN=1 runs otto-api on core 0 and the load tool on core 1 (taskset), so neither steals the
# other's core; BUSES="embedded" (or "redis") runs one of the two; OTTO_BIN=<otto-api> measures
# another build.
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-10000}
rate=${2:-1000}
seconds=${3:-10}
# Both sides hold one socket per connection: raise the open-files limit as far as allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((connections + 1000)) ]; then
  echo "open-files limit $(ulimit -n) is too low for $connections connections" >&2
  exit 1
fi
target=$(realpath "${CARGO_TARGET_DIR:-target}")
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p otto -p ws-bench >&2
bin=${OTTO_BIN:-$target/release/otto-api}
server_cpu=() client_cpu=()
if [ -n "${PIN:-}" ]; then server_cpu=(taskset -c 0) client_cpu=(taskset -c 1); fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

for t in $(seq 1 100); do
  printf 'org_rt%03d\t%s\n' "$t" "$(cd "$work" && "$bin" token --tenant "org_rt$(printf %03d "$t")" --user "user_rt$t" --role rep)"
done > "$work/tokens.tsv"

run() { # label, extra env...
  local label=$1
  shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  (cd "$work" && env DATABASE_URL="sqlite://$work/$label.db?mode=rwc" PORT="$port" LOG_LEVEL=warn DEV_EMIT_KEY=bench \
     RATE_LIMIT_WHITELIST_IPS=127.0.0.1 "$@" "${server_cpu[@]}" "$bin") &
  local pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 1
  local idle_kb
  idle_kb=$(ps -o rss= -p "$pid" | tr -d ' ')
  echo "== $label: otto-api idle RSS $((idle_kb / 1024)) MB"
  "${client_cpu[@]}" "$target/release/ws-bench" load --base "http://127.0.0.1:$port" --tokens "$work/tokens.tsv" \
    --connections "$connections" --rate "$rate" --seconds "$seconds" --dev-key bench > "$work/out.txt" &
  local bench=$!
  # Measure RSS while all connections are held.
  until grep -q HOLDING "$work/out.txt" 2>/dev/null || ! kill -0 "$bench" 2>/dev/null; do sleep 0.2; done
  local held_kb
  held_kb=$(ps -o rss= -p "$pid" | tr -d ' ')
  wait "$bench"
  grep -v HOLDING "$work/out.txt"
  echo "otto-api RSS with $connections connections: $((held_kb / 1024)) MB ($(( (held_kb - idle_kb) * 1024 / connections )) bytes per connection); goal < 300 MB"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
for bus in ${BUSES:-embedded redis}; do
  case $bus in
    embedded) run embedded ;;
    redis) run redis REDIS_URL=redis://127.0.0.1:6379 REDIS_PREFIX="bench-rt-$$:" MIGRATE_ON_START=true ;;
  esac
done
