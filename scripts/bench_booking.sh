#!/usr/bin/env bash
# Booking figures, measured in one run on this machine (release build, PostgreSQL, in-process
# event bus): POST /v1/appointments with 200 reps and 20,000 leads, wrk -t2 -c64 booking slots
# that never conflict (scripts/bench/booking_unique.lua), next to pgbench -c64 running the same
# statements one booking runs, as one transaction (scripts/bench/booking.sql); goal >= 60 % of
# pgbench. Then the plan of the conflict check (an index range, never a scan of the rep's past).
# Usage: scripts/bench_booking.sh [duration=10s]   (CARGO_TARGET_DIR and SKIP_BUILD=1 honoured)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
seconds=${duration%s}
source scripts/bench/common.sh
bench_prepare otto_bench_booking
export DATABASE_URL="$PG/$db" MIGRATE_ON_START=true PORT=$port LOG_LEVEL=warn \
  RATE_LIMIT_USER=100000000/second RATE_LIMIT_TENANT=100000000/second WORKER_QUEUES=default \
  DB_MAX_CONNECTIONS=${DB_MAX_CONNECTIONS:-16}
unset REDIS_URL
(cd "$work" && exec "$target/release/otto-api") &
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
token=$(cd "$work" && "$target/release/otto-api" token --tenant org_bench --user user_bench --role leadership)
curl -fs -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/me" >/dev/null   # provisions the tenant
psql "$PG/$db" -q >/dev/null <<'SQL'
INSERT INTO users (id, company_id, role, email, name, created_at, updated_at)
  SELECT 'user_rep_' || n, 'org_bench', 'rep', NULL, NULL, now(), now() FROM generate_series(1, 200) n;
INSERT INTO sales_reps (id, company_id, user_id, display_name, phone, active, created_at, updated_at)
  SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'org_bench', 'user_rep_' || n, 'Rep ' || n,
         NULL, true, now(), now() FROM generate_series(1, 200) n;
INSERT INTO leads (id, company_id, name, phone, email, source, status, assigned_user_id, version, created_at, updated_at)
  SELECT ('00000000-0000-4000-9000-' || lpad(n::text, 12, '0'))::uuid, 'org_bench', 'Lead ' || n,
         '+1555' || lpad(n::text, 7, '0'), NULL, 'callrail', 'new', NULL, 1, now(), now()
  FROM generate_series(1, 20000) n;
ANALYZE;
SQL

probe=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"lead_id":"00000000-0000-4000-9000-000000000001","rep_id":"00000000-0000-4000-8000-000000000001","starts_at":"2026-12-31T08:00:00Z","ends_at":"2026-12-31T08:30:00Z"}' \
  "http://127.0.0.1:$port/v1/appointments")
[ "${probe##* }" = 201 ] || { echo "a booking failed: $probe" >&2; exit 1; }
wrk_out=$(wrk -t2 -c64 -d"$duration" --latency -s scripts/bench/booking_unique.lua \
  -H "Authorization: Bearer $token" "http://127.0.0.1:$port")
wrk_rps=$(awk '/Requests\/sec/ {print $2}' <<<"$wrk_out")
wrk_p99=$(awk '$1=="99%" {print $2}' <<<"$wrk_out")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$wrk_out")
booked=$(psql "$PG/$db" -tAc "SELECT count(*) FROM appointments")
kill "$(jobs -p)" 2>/dev/null || true
wait 2>/dev/null || true
pg_tps=$(pgbench "$PG/$db" -n -c64 -j2 -T"$seconds" -M simple -f scripts/bench/booking.sql 2>/dev/null | awk '/^tps/ {print $3}')

echo "POST /v1/appointments (200 reps, no conflicts): $wrk_rps bookings/s, p99 $wrk_p99 (wrk -t2 -c64 -d$duration; $booked booked, non-2xx: ${non2xx:-0})"
echo "pgbench, same statements as one transaction: $pg_tps tps (-c64 -j2 -M simple -T$seconds)"
echo "ratio: $(python3 -c "print(f'{100*$wrk_rps/$pg_tps:.1f}')") %; goal >= 60 %"
echo "== EXPLAIN (ANALYZE, BUFFERS): the conflict check =="
psql "$PG/$db" -Atc "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id FROM appointments WHERE company_id = 'org_bench'
  AND rep_id = '00000000-0000-4000-8000-000000000007' AND scheduled_start > TIMESTAMPTZ '2027-01-10' - interval '24 hours'
  AND scheduled_start < TIMESTAMPTZ '2027-01-10T00:30:00Z' AND scheduled_end > TIMESTAMPTZ '2027-01-10'
  AND status = 'scheduled' LIMIT 1"
