#!/usr/bin/env bash
# Identity figures, measured in one run on this machine (release build, PostgreSQL + Redis):
#   - authenticated GET /v1/leads?limit=50 with 10,000 leads in the tenant, wrk -t2 -c64:
#     requests per second and p99, next to /health in the same run;
#   - auth + rate-limit overhead: p50 of GET /v1/session (token check + Redis limiter, no table)
#     minus p50 of GET /health, both with one connection (latency, not throughput).
# Usage: scripts/bench_identity.sh [duration=10s]   (CARGO_TARGET_DIR and SKIP_BUILD=1 honoured)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
source scripts/bench/common.sh
REDIS=${BENCH_REDIS:-redis://127.0.0.1:6379}
bench_prepare otto_bench
export DATABASE_URL="$PG/$db" REDIS_URL="$REDIS" REDIS_PREFIX="otto-bench-$$:" MIGRATE_ON_START=true \
  PORT=$port LOG_LEVEL=warn RATE_LIMIT_USER=100000000/second RATE_LIMIT_TENANT=100000000/second
(cd "$work" && exec "$target/release/otto-api") &
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done

token=$(cd "$work" && "$target/release/otto-api" token --tenant org_bench --user user_bench --role leadership)
auth="Authorization: Bearer $token"
curl -fs -H "$auth" "http://127.0.0.1:$port/v1/me" >/dev/null   # provisions the tenant
psql "$PG/$db" -qc "INSERT INTO leads (id, company_id, name, phone, email, source, status, assigned_user_id, version, created_at, updated_at)
  SELECT gen_random_uuid(), 'org_bench', 'Lead ' || n, '+1555' || lpad(n::text, 7, '0'), NULL, 'callrail', 'new', NULL, 1, now(), now()
  FROM generate_series(1, 10000) AS n" >/dev/null
psql "$PG/$db" -qc "ANALYZE leads" >/dev/null
items=$(curl -fs -H "$auth" "http://127.0.0.1:$port/v1/leads?limit=50" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
[ "$items" = 50 ] || { echo "expected 50 leads per page, got $items" >&2; exit 1; }

read -r leads_rps leads_p50 leads_p99 < <(summary "http://127.0.0.1:$port/v1/leads?limit=50" 64 -H "$auth")
read -r health_rps health_p50 health_p99 < <(summary "http://127.0.0.1:$port/health" 64)
read -r _ session_lat _ < <(summary "http://127.0.0.1:$port/v1/session" 1 -H "$auth")
read -r _ health_lat _ < <(summary "http://127.0.0.1:$port/health" 1)

to_ms() { python3 -c "import sys,re; v=sys.argv[1]; n=float(re.match(r'[0-9.]+', v).group()); u=v[len(re.match(r'[0-9.]+', v).group()):]; print(n*{'us':0.001,'ms':1,'s':1000}[u])" "$1"; }
echo "GET /v1/leads?limit=50 (10,000 leads, PostgreSQL, auth + Redis limiter): $leads_rps req/s, p50 $leads_p50, p99 $leads_p99 (wrk -t2 -c64 -d$duration); goal >= 5000 req/s, p99 < 25 ms"
echo "GET /health, same run:                                                 $health_rps req/s, p50 $health_p50, p99 $health_p99"
echo "auth + rate-limit overhead (p50 /v1/session - p50 /health, one connection): $(python3 -c "print(f'{$(to_ms "$session_lat") - $(to_ms "$health_lat"):.3f}')") ms ($session_lat vs $health_lat); goal < 0.3 ms"
