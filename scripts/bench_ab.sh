#!/usr/bin/env bash
# A/B of two otto-api builds (or two settings of one) on one path, in one run: both processes
# run at once on one scratch PostgreSQL database (embedded mode, 10,000 leads in org_bench, its
# CallRail company CRBENCH), and wrk (-t2 -c64) alternates between them ROUNDS times, A then B,
# then B then A (throughput drifts upward as a run warms up, which would favour whichever
# always went second), so the machine's noise and the drift fall on both alike.
# Usage: A=<otto-api> B=<otto-api> [AENV="K=V ..."] [BENV="K=V ..."] scripts/bench_ab.sh [leads|callrail] [duration=5s] [rounds=4]
# Prints "A|B req/s p50 p99" per measurement, then each side's median.
set -euo pipefail
cd "$(dirname "$0")/.."
path=${1:-leads}
duration=${2:-5s}
rounds=${3:-4}
: "${A:?A=<otto-api binary>}" "${B:?B=<otto-api binary>}"
SKIP_BUILD=1
source scripts/bench/common.sh
bench_prepare otto_ab
export DATABASE_URL="$PG/$db" MIGRATE_ON_START=true LOG_LEVEL=error \
  RATE_LIMIT_WHITELIST_IPS=127.0.0.1 RATE_LIMIT_USER=100000000/second \
  RATE_LIMIT_TENANT=100000000/second WORKER_QUEUES=default
unset REDIS_URL
port_b=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086 # AENV/BENV are lists of K=V words
(cd "$work" && PORT=$port exec env ${AENV:-} "$A") &
# The second waits for the first's migrations.
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
# shellcheck disable=SC2086
(cd "$work" && PORT=$port_b exec env ${BENV:-} "$B") &
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port_b/health" >/dev/null 2>&1 && break; sleep 0.1; done
token=$(cd "$work" && "$A" token --tenant org_bench --user user_bench --role leadership)
curl -fs -X PATCH -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"callrail_company_id":"CRBENCH"}' "http://127.0.0.1:$port/v1/companies/org_bench" >/dev/null
psql -q "$PG/$db" -c "INSERT INTO leads (id, company_id, name, phone, email, source, status, assigned_user_id, version, created_at, updated_at)
  SELECT gen_random_uuid(), 'org_bench', 'Lead ' || n, '+1444' || lpad(n::text, 7, '0'), NULL, 'callrail', 'new', NULL, 1, now(), now()
  FROM generate_series(1, 10000) AS n" -c "ANALYZE leads" >/dev/null
for r in $(seq 1 "$rounds"); do
  order="A B"
  [ $((r % 2)) = 0 ] && order="B A"
  for side in $order; do
    p=$([ "$side" = A ] && echo "$port" || echo "$port_b")
    case $path in
      leads) echo "$side $(summary "http://127.0.0.1:$p/v1/leads?limit=50" 64 -H "Authorization: Bearer $token")" ;;
      callrail) echo "$side $(summary "http://127.0.0.1:$p" 64 -s scripts/bench/callrail_unique.lua)" ;;
      *) echo "unknown path $path (leads, callrail)" >&2; exit 2 ;;
    esac
  done
done | tee "$work/rows"
python3 - "$work/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    side, rps = line.split()[:2]
    rows.setdefault(side, []).append(float(rps))
for side in sorted(rows):
    print(f"median {side}: {statistics.median(rows[side]):.0f}/s over {len(rows[side])}")
PY
