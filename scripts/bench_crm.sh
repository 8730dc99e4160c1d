#!/usr/bin/env bash
# CRM read-side figures, measured in one run on this machine (release build, PostgreSQL):
#   - GET /v1/calls?limit=50 and GET /v1/leads/{id}/timeline?limit=50 next to GET /v1/leads?limit=50
#     (wrk -t2 -c64), with 100,000 calls and 10,000 leads in the tenant and 9 other tenants of the
#     same size; goal: each within 80 % of the leads list's req/s, p99 < 50 ms;
#   - GET /v1/dashboard/metrics: cold (a range not yet cached) over the tenant's 100,000 calls,
#     goal < 150 ms; cached p50 (wrk -c1), goal < 2 ms;
#   - EXPLAIN (ANALYZE, BUFFERS) of the calls page and of one kind of the timeline.
# Usage: scripts/bench_crm.sh [duration=10s]   (CARGO_TARGET_DIR and SKIP_BUILD=1 honoured)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
source scripts/bench/common.sh
bench_prepare otto_crm_bench
# Embedded mode on PostgreSQL (no Redis): the dashboard cache is the process's memory.
export DATABASE_URL="$PG/$db" MIGRATE_ON_START=true PORT=$port LOG_LEVEL=warn \
  RATE_LIMIT_USER=100000000/second RATE_LIMIT_TENANT=100000000/second WORKER_QUEUES=default
(cd "$work" && exec "$target/release/otto-api") &
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done

token=$(cd "$work" && "$target/release/otto-api" token --tenant org_bench --user user_bench --role leadership)
auth="Authorization: Bearer $token"
curl -fs -H "$auth" "http://127.0.0.1:$port/v1/me" >/dev/null   # provisions the tenant

echo "seeding 10 tenants x (10,000 leads, 100,000 calls, 20,000 messages, 10,000 tasks, 25,000 follow-ups)..." >&2
psql "$PG/$db" -q >/dev/null <<'SQL'
INSERT INTO companies (id, name, time_zone, callrail_company_id, lockdown_mode, created_at, updated_at)
  SELECT 'org_other' || t, 'Other ' || t, 'America/Chicago', NULL, false, now(), now() FROM generate_series(1, 9) t;
UPDATE companies SET time_zone = 'America/Chicago' WHERE id = 'org_bench';
CREATE TEMP TABLE tenants AS SELECT id FROM companies WHERE id = 'org_bench' OR id LIKE 'org_other%';
CREATE TEMP TABLE seeded_leads AS
  SELECT gen_random_uuid() AS id, c.id AS company_id, n
  FROM tenants c, generate_series(1, 10000) n;
INSERT INTO leads (id, company_id, name, phone, email, source, status, assigned_user_id, version, created_at, updated_at)
  SELECT id, company_id, 'Lead ' || n, '+1555' || lpad(n::text, 7, '0'), NULL, 'callrail', 'new', NULL, 1,
         now() - (n || ' minutes')::interval, now()
  FROM seeded_leads;
CREATE INDEX ON seeded_leads (company_id, n);
INSERT INTO calls (id, company_id, lead_id, provider, provider_call_id, direction, answered, duration_seconds,
                   recording_url, transcript, analysis, objections, booked, notes, status, started_at, created_at, updated_at)
  SELECT gen_random_uuid(), l.company_id, l.id, 'callrail', 'CAL' || l.company_id || '_' || k,
         'inbound', k % 4 <> 0, 60 + k % 600, NULL, NULL,
         CASE WHEN k % 2 = 0 THEN jsonb_build_object('objections',
              jsonb_build_array((ARRAY['price','timing','spouse','trust'])[1 + k % 4])) END,
         CASE WHEN k % 2 = 0 THEN jsonb_build_array((ARRAY['price','timing','spouse','trust'])[1 + k % 4]) END,
         k % 5 = 0, NULL, 'completed',
         now() - ((k % 86400) || ' minutes')::interval, now() - ((k % 86400) || ' minutes')::interval, now()
  FROM tenants c CROSS JOIN generate_series(1, 100000) k
  JOIN seeded_leads l ON l.company_id = c.id AND l.n = 1 + k % 10000;
INSERT INTO messages (id, company_id, lead_id, direction, from_number, to_number, body, provider, provider_sid,
                      status, created_at, updated_at)
  SELECT gen_random_uuid(), s.company_id, s.id, 'inbound', '+15550000000', '+15551111111', 'Is Tuesday free?',
         'twilio', 'SM' || replace(gen_random_uuid()::text, '-', ''), 'received',
         now() - ((s.n * 2 + k) || ' minutes')::interval, now()
  FROM seeded_leads s, generate_series(1, 2) k;
INSERT INTO tasks (id, company_id, assignee_user_id, lead_id, title, unique_key, due_at, status, created_at, updated_at)
  SELECT gen_random_uuid(), s.company_id, NULL, s.id, 'Call back', NULL, NULL, 'open', now() - (s.n || ' minutes')::interval, now()
  FROM seeded_leads s;
INSERT INTO follow_ups (id, company_id, call_id, lead_id, channel, draft, status, sent_at, created_at, updated_at)
  SELECT gen_random_uuid(), c.company_id, c.id, c.lead_id, 'sms', 'Thanks for calling!', 'draft', NULL, c.created_at, now()
  FROM calls c WHERE c.booked = false AND c.duration_seconds % 3 = 0;
SQL
psql "$PG/$db" -qc "VACUUM ANALYZE" >/dev/null   # what autovacuum does in production; sets the visibility map
lead=$(psql "$PG/$db" -Atc "SELECT lead_id FROM calls WHERE company_id = 'org_bench' GROUP BY lead_id ORDER BY count(*) DESC LIMIT 1")
items=$(psql "$PG/$db" -Atc "SELECT (SELECT count(*) FROM calls WHERE lead_id = '$lead') + (SELECT count(*) FROM messages WHERE lead_id = '$lead')
  + (SELECT count(*) FROM tasks WHERE lead_id = '$lead') + (SELECT count(*) FROM follow_ups WHERE lead_id = '$lead')")
base="http://127.0.0.1:$port"
for path in "/v1/leads?limit=50" "/v1/calls?limit=50" "/v1/leads/$lead/timeline?limit=50"; do
  got=$(curl -fs -H "$auth" "$base$path" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
  [ "$got" -gt 0 ] || { echo "no items from $path" >&2; exit 1; }
done

read -r leads_rps leads_p50 leads_p99 < <(summary "$base/v1/leads?limit=50" 64 -H "$auth")
read -r calls_rps calls_p50 calls_p99 < <(summary "$base/v1/calls?limit=50" 64 -H "$auth")
read -r tl_rps tl_p50 tl_p99 < <(summary "$base/v1/leads/$lead/timeline?limit=50" 64 -H "$auth")
pct() { python3 -c "print(f'{100 * $1 / $2:.0f} %')"; }
echo "GET /v1/leads?limit=50 (reference):         $leads_rps req/s, p50 $leads_p50, p99 $leads_p99 (wrk -t2 -c64 -d$duration)"
echo "GET /v1/calls?limit=50:                     $calls_rps req/s, p50 $calls_p50, p99 $calls_p99 = $(pct "$calls_rps" "$leads_rps") of the leads list"
echo "GET /v1/leads/{id}/timeline?limit=50 ($items items): $tl_rps req/s, p50 $tl_p50, p99 $tl_p99 = $(pct "$tl_rps" "$leads_rps") of the leads list"

# Dashboard: five ranges never asked before (cold), then one range again and again (cached).
cold=()
for back in 0 1 2 3 4; do
  to=$(date -u -d "-$back days" +%F); from=$(date -u -d "-$((back + 29)) days" +%F)
  cold+=("$(curl -fs -o /dev/null -w '%{time_total}' -H "$auth" "$base/v1/dashboard/metrics?from=$from&to=$to")")
done
cold_ms=$(python3 -c "import statistics,sys; print(f'{statistics.median(float(v) for v in sys.argv[1:]) * 1000:.1f}')" "${cold[@]}")
read -r _ cached_p50 cached_p99 < <(summary "$base/v1/dashboard/metrics" 1 -H "$auth")
calls_total=$(curl -fs -H "$auth" "$base/v1/dashboard/metrics" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["calls_total"], d["cached"])')
echo "GET /v1/dashboard/metrics cold (30 days, tenant of 100,000 calls; median of 5 ranges): $cold_ms ms (curl time_total); goal < 150 ms"
echo "GET /v1/dashboard/metrics cached (one connection): p50 $cached_p50, p99 $cached_p99; goal p50 < 2 ms  [calls_total, cached: $calls_total]"

echo "== EXPLAIN (ANALYZE, BUFFERS): the calls page =="
psql "$PG/$db" -Atc "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM calls WHERE company_id = 'org_bench' ORDER BY id DESC LIMIT 51"
echo "== EXPLAIN (ANALYZE, BUFFERS): one kind of the timeline (calls of the lead, after a cursor) =="
psql "$PG/$db" -Atc "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM calls WHERE company_id = 'org_bench' AND lead_id = '$lead'
  AND created_at <= now() ORDER BY created_at DESC, id DESC LIMIT 51"
