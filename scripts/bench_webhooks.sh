#!/usr/bin/env bash
# Webhook figures, measured in one run on this machine (release build, PostgreSQL, in-process
# event bus): CallRail pre-call deliveries per second with wrk -t2 -c64 (a unique call id per
# request, scripts/bench/callrail_unique.lua), next to pgbench -c64 running the same statements
# one delivery runs, as one transaction (scripts/bench/callrail_delivery.sql).
# Usage: scripts/bench_webhooks.sh [duration=10s]   (CARGO_TARGET_DIR and SKIP_BUILD=1 honoured)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
seconds=${duration%s}
source scripts/bench/common.sh
bench_prepare otto_bench_wh
export DATABASE_URL="$PG/$db" MIGRATE_ON_START=true PORT=$port LOG_LEVEL=warn \
  RATE_LIMIT_WHITELIST_IPS=127.0.0.1 DB_MAX_CONNECTIONS=${DB_MAX_CONNECTIONS:-16}
unset REDIS_URL
(cd "$work" && exec "$target/release/otto-api") &
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
token=$(cd "$work" && "$target/release/otto-api" token --tenant org_bench --user user_bench --role leadership)
curl -fs -X PATCH -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"callrail_company_id":"CRBENCH"}' "http://127.0.0.1:$port/v1/companies/org_bench" >/dev/null

wrk_rps=$(wrk -t2 -c64 -d"$duration" -s scripts/bench/callrail_unique.lua "http://127.0.0.1:$port" |
  awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "non-2xx: " $0 > "/dev/stderr"}')
processed=$(psql "$PG/$db" -tAc "SELECT count(*) FROM idempotency_keys WHERE provider = 'callrail'")
kill "$(jobs -p)" 2>/dev/null || true
wait 2>/dev/null || true
pg_tps=$(pgbench "$PG/$db" -n -c64 -j2 -T"$seconds" -M simple -f scripts/bench/callrail_delivery.sql 2>/dev/null | awk '/^tps/ {print $3}')

echo "CallRail deliveries into PostgreSQL: $wrk_rps deliveries/s (wrk -t2 -c64 -d$duration, $processed processed); goal >= 2000/s"
echo "pgbench, same statements as one transaction: $pg_tps tps (-c64 -j2 -M simple -T$seconds)"
echo "ratio: $(python3 -c "print(f'{100*$wrk_rps/$pg_tps:.1f}')") %; goal >= 60 %"
