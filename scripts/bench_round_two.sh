#!/usr/bin/env bash
# Issue 20's database-bound figures, in one run on this machine (release build, PostgreSQL,
# embedded mode), alternating Otto and its reference, ROUNDS times (default 2):
#   - GET /v1/leads?limit=50 (wrk -t2 -c64, 10,000 leads) next to pgbench running the four
#     statements the read cost before (scripts/bench/tenant_read.sql: BEGIN, RLS context, page,
#     COMMIT); goal >= 2x;
#   - CallRail pre-call deliveries (wrk -t2 -c64, a unique call per request) next to pgbench
#     running one delivery transaction per commit (scripts/bench/callrail_delivery.sql); goal >= 2x.
# And the ceilings: pgbench running the page query alone (scripts/bench/tenant_read_page.sql), and
# pgbench group-committing deliveries as Otto does (scripts/bench/callrail_batch.sh, deliveries/s).
# pgbench runs -c64 -j2; the read -M prepared (as sqlx prepares), the delivery -M simple (its
# script's expressions leave parameter types open, which -M prepared refuses). Prints every
# figure, then the medians.
# Usage: scripts/bench_round_two.sh [duration=10s] [rounds=2]   (SKIP_BUILD=1, CARGO_TARGET_DIR,
# OTTO_BIN=<another otto-api> honoured; extra settings pass through the environment, e.g.
# WEBHOOK_BATCH_WINDOW_MS=0 to measure without group commit)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
rounds=${2:-2}
seconds=${duration%s}
source scripts/bench/common.sh
bench_prepare otto_bench_r2
bin=${OTTO_BIN:-$target/release/otto-api}
export DATABASE_URL="$PG/$db" MIGRATE_ON_START=true PORT=$port LOG_LEVEL=warn \
  RATE_LIMIT_WHITELIST_IPS=127.0.0.1 RATE_LIMIT_USER=100000000/second \
  RATE_LIMIT_TENANT=100000000/second WORKER_QUEUES=default
unset REDIS_URL
(cd "$work" && exec "$bin") &
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
token=$(cd "$work" && "$bin" token --tenant org_bench --user user_bench --role leadership)
base="http://127.0.0.1:$port"
curl -fs -X PATCH -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"callrail_company_id":"CRBENCH"}' "$base/v1/companies/org_bench" >/dev/null
psql -q "$PG/$db" -c "INSERT INTO leads (id, company_id, name, phone, email, source, status, assigned_user_id, version, created_at, updated_at)
  SELECT gen_random_uuid(), 'org_bench', 'Lead ' || n, '+1444' || lpad(n::text, 7, '0'), NULL, 'callrail', 'new', NULL, 1, now(), now()
  FROM generate_series(1, 10000) AS n" -c "ANALYZE leads" >/dev/null

wrk_row() { # label, wrk args... -> "label rps p99"
  local label=$1; shift
  wrk -t2 -c64 -d"$duration" --latency "$@" |
    awk -v l="$label" '/Requests\/sec/ {r=$2} $1=="99%" {p=$2} /Non-2xx/ {e=$NF}
      END {printf "%s %s %s%s\n", l, r, p, (e=="" ? "" : " non-2xx=" e)}'
}
pgbench_row() { # label, sql file, protocol, [statements' units per transaction]
  pgbench "$PG/$db" -n -c64 -j2 -M "$3" -T"$seconds" -f "$2" 2>/dev/null |
    awk -v l="$1" -v k="${4:-1}" '/latency average/ {lat=$4} /^tps/ {printf "%s %.0f %sms(avg)\n", l, $3 * k, lat}'
}
members=${WEBHOOK_BATCH_MAX:-32}
scripts/bench/callrail_batch.sh "$members" >"$work/callrail_batch.sql"
for r in $(seq 1 "$rounds"); do
  wrk_row otto_leads "$base/v1/leads?limit=50" -H "Authorization: Bearer $token"
  pgbench_row pgbench_read scripts/bench/tenant_read.sql prepared
  pgbench_row pgbench_page_only scripts/bench/tenant_read_page.sql prepared
  wrk_row otto_callrail -s scripts/bench/callrail_unique.lua "$base"
  pgbench_row pgbench_delivery scripts/bench/callrail_delivery.sql simple
  pgbench_row pgbench_batched_deliveries "$work/callrail_batch.sql" simple "$members"
done | tee "$work/rows"
batches=$(curl -fs "$base/metrics" | awk '/^webhook_group_commit_size_count/ {c=$2} /^webhook_group_commit_size_sum/ {s=$2} END {if (c>0) printf "%.1f deliveries per commit over %d commits", s/c, c; else print "no group commits"}')
echo "group commit: $batches"
python3 - "$work/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, value = line.split()[:2]
    rows.setdefault(label, []).append(float(value))
med = {k: statistics.median(v) for k, v in rows.items()}
for k, v in med.items():
    print(f"median {k}: {v:.0f}/s")
print(f"leads list vs pgbench's four statements: {med['otto_leads'] / med['pgbench_read']:.2f}x (goal >= 2x)")
print(f"CallRail deliveries vs pgbench, one commit each: {med['otto_callrail'] / med['pgbench_delivery']:.2f}x (goal >= 2x)")
print(f"ceilings: the page query alone {med['pgbench_page_only'] / med['pgbench_read']:.2f}x the four statements;"
      f" deliveries group-committed by pgbench {med['pgbench_batched_deliveries'] / med['pgbench_delivery']:.2f}x one per commit")
PY
