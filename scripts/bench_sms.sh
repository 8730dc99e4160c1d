#!/usr/bin/env bash
# SMS figures, measured in one run on this machine (release build, PostgreSQL, in-process event
# bus): POST /v1/sms accepted per second (wrk -t2 -c64, a unique Idempotency-Key per request;
# the sends pile up in the queue, no worker takes them) next to CallRail pre-call deliveries in
# the same run (a transaction of the same size; goal: within 80 % of it), and the p50 of a
# replayed key (wrk -c1; goal < 2 ms).
# Usage: scripts/bench_sms.sh [duration=10s]   (CARGO_TARGET_DIR and SKIP_BUILD=1 honoured)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
source scripts/bench/common.sh
bench_prepare otto_bench_sms
export DATABASE_URL="$PG/$db" MIGRATE_ON_START=true PORT=$port LOG_LEVEL=warn \
  RATE_LIMIT_USER=100000000/second RATE_LIMIT_TENANT=100000000/second RATE_LIMIT_WHITELIST_IPS=127.0.0.1 \
  WORKER_QUEUES=asr TWILIO_ACCOUNT_SID=ACbench TWILIO_AUTH_TOKEN=bench-token \
  TWILIO_FROM_NUMBER=+15550001111 TWILIO_API_URL=http://127.0.0.1:9 \
  CALLRAIL_WEBHOOK_SECRET= DB_MAX_CONNECTIONS=${DB_MAX_CONNECTIONS:-16}
unset REDIS_URL
(cd "$work" && exec "$target/release/otto-api") &
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
token=$(cd "$work" && "$target/release/otto-api" token --tenant org_bench --user user_bench --role leadership)
curl -fs -X PATCH -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"callrail_company_id":"CRBENCH"}' "http://127.0.0.1:$port/v1/companies/org_bench" >/dev/null
probe=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -H 'Idempotency-Key: replayed' -d '{"to":"+15550009999","body":"Tuesday at 9 works"}' "http://127.0.0.1:$port/v1/sms")
[ "${probe##* }" = 202 ] || { echo "POST /v1/sms failed: $probe" >&2; exit 1; }

wrk_out=$(wrk -t2 -c64 -d"$duration" --latency -s scripts/bench/sms_unique.lua \
  -H "Authorization: Bearer $token" "http://127.0.0.1:$port")
sms_rps=$(awk '/Requests\/sec/ {print $2}' <<<"$wrk_out")
sms_p99=$(awk '$1=="99%" {print $2}' <<<"$wrk_out")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$wrk_out")
cr_rps=$(wrk -t2 -c64 -d"$duration" -s scripts/bench/callrail_unique.lua "http://127.0.0.1:$port" |
  awk '/Requests\/sec/ {print $2}')
cat > "$work/replay.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"to":"+15550009999","body":"Tuesday at 9 works"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Idempotency-Key"] = "replayed"
LUA
read -r _ replay_p50 replay_p99 < <(summary "http://127.0.0.1:$port/v1/sms" 1 -s "$work/replay.lua" -H "Authorization: Bearer $token")
queued=$(psql "$PG/$db" -tAc "SELECT count(*) FROM messages WHERE direction = 'outbound'")

echo "POST /v1/sms accepted: $sms_rps req/s, p99 $sms_p99 (wrk -t2 -c64 -d$duration, unique keys; $queued queued, non-2xx: ${non2xx:-0})"
echo "CallRail pre-call deliveries, same run: $cr_rps deliveries/s"
echo "ratio: $(python3 -c "print(f'{100*$sms_rps/$cr_rps:.1f}')") %; goal >= 80 %"
echo "replay of a stored key (one connection): p50 $replay_p50, p99 $replay_p99; goal p50 < 2 ms"
