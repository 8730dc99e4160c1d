#!/usr/bin/env bash
# Job-queue figures, measured in one run on this machine (release build, the local Redis):
# redis-benchmark LPUSH/RPOP as the ceiling, then `otto-dev bench-jobs`: no-op jobs through
# Otto's Redis queue and worker (throughput enqueue-to-completion, and enqueue-to-start latency
# at a steady rate).
# Usage: scripts/bench_jobs.sh [count=100000] [rate=1000] [seconds=10] [concurrency=8]
#        (REDIS_URL, CARGO_TARGET_DIR and SKIP_BUILD=1 honoured)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-100000}
rate=${2:-1000}
seconds=${3:-10}
concurrency=${4:-8}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
command -v redis-benchmark >/dev/null || { echo "redis-benchmark is required (redis-tools)" >&2; exit 1; }
target=$(realpath "${CARGO_TARGET_DIR:-target}")
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin otto-dev >&2

echo "== redis-benchmark (50 clients, one command per round trip) =="
redis-benchmark -h 127.0.0.1 -p 6379 -t lpush,rpop -n 200000 --csv \
  | awk -F, 'NR > 1 { gsub(/"/, ""); printf "%s: %.0f requests/s (%.0f per minute), p50 %s ms\n", $1, $2, $2 * 60, $5 }'
echo "== Otto: otto-dev bench-jobs --count $count --rate $rate --seconds $seconds --concurrency $concurrency =="
LOG_LEVEL=warn "$target/release/otto-dev" bench-jobs --redis-url "$redis_url" --count "$count" \
  --rate "$rate" --seconds "$seconds" --concurrency "$concurrency"
