#!/usr/bin/env bash
# Receptionist figures (issue 16), one run on this machine: release build, PostgreSQL and Redis
# (distributed mode: conversations in Redis, a lock per turn), the deterministic engine (no
# model). 1,000 widget conversations are opened, then wrk -t2 -c64 sends turns across them
# ("my furnace is making a noise": the engine reads the company, its settings and the state,
# decides, stores the state). Prints turns/s, p50 and p99 next to /health in the same run.
# Goals: p99 < 20 ms and >= 2,000 turns/s.
# Usage: scripts/bench_assistant.sh [duration=10s] [conversations=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
conversations=${2:-1000}
source scripts/bench/common.sh
bench_prepare otto_bench_assistant
redis-cli -u "${BENCH_REDIS:-redis://127.0.0.1:6379}" ping >/dev/null || { echo "Redis is required" >&2; exit 1; }
export DATABASE_URL="$PG/$db" MIGRATE_ON_START=true PORT=$port LOG_LEVEL=warn \
  REDIS_URL=${BENCH_REDIS:-redis://127.0.0.1:6379} REDIS_PREFIX="otto-bench-$$:" \
  RATE_LIMIT_USER=100000000/second RATE_LIMIT_TENANT=100000000/second RATE_LIMIT_WHITELIST_IPS=127.0.0.1 \
  DB_MAX_CONNECTIONS=${DB_MAX_CONNECTIONS:-16}
(cd "$work" && exec "$target/release/otto-api") &
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
base="http://127.0.0.1:$port"
token=$(cd "$work" && "$target/release/otto-api" token --tenant org_bench --user user_bench --role leadership)
day='{"open":"08:00","close":"18:00"}'
key=$(curl -fs -X PATCH -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"enabled\":true,\"min_notice_minutes\":0,\"business_hours\":{\"monday\":$day,\"tuesday\":$day,\"wednesday\":$day,\"thursday\":$day,\"friday\":$day,\"saturday\":$day,\"sunday\":$day}}" \
  "$base/v1/assistant" | python3 -c 'import json,sys; print(json.load(sys.stdin)["widget_key"])')
python3 - "$base" "$key" "$conversations" > "$work/sessions" <<'PY'
import http.client, json, sys, urllib.parse
base, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
url = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(url.hostname, url.port)
for _ in range(count):
    conn.request("POST", "/v1/widget/sessions", body="{}", headers={"X-Widget-Key": key, "Content-Type": "application/json"})
    answer = conn.getresponse()
    body = answer.read()
    assert answer.status == 201, body
    print(json.loads(body)["session_id"])
PY
export SESSIONS_FILE="$work/sessions" WIDGET_KEY="$key"
read -r health_rps health_p50 health_p99 < <(summary "$base/health" 64)
wrk_out=$(wrk -t2 -c64 -d"$duration" --latency -s scripts/bench/assistant_turns.lua "$base")
turns=$(awk '/Requests\/sec/ {print $2}' <<<"$wrk_out")
p50=$(awk '$1=="50%" {print $2}' <<<"$wrk_out")
p99=$(awk '$1=="99%" {print $2}' <<<"$wrk_out")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$wrk_out")
echo "widget turns over $conversations conversations: $turns turns/s, p50 $p50, p99 $p99 (wrk -t2 -c64 -d$duration; non-2xx: ${non2xx:-0})"
echo "/health, same run: $health_rps req/s, p50 $health_p50, p99 $health_p99"
echo "goals: p99 < 20 ms, >= 2,000 turns/s"
redis-cli -u "$REDIS_URL" --scan --pattern "otto-bench-$$:*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null
