#!/usr/bin/env bash
# Prints a pgbench script: one group-committed batch of N CallRail pre-call deliveries (default
# 32, WEBHOOK_BATCH_MAX's default) as Otto runs them: one transaction, each delivery in its own
# savepoint with its tenant's row-level security context, the statements Otto sends (key claim,
# lead and call upserts with RETURNING, the two outbox rows). pgbench's tps times N is what
# PostgreSQL alone can do with group commit: a ceiling for Otto's deliveries per second.
# Usage: scripts/bench/callrail_batch.sh [members=32] > batch.sql
members=${1:-32}
echo "BEGIN;"
for m in $(seq 1 "$members"); do
  cat <<SQL
\\set n$m random(1, 2000000000)
SAVEPOINT m$m; SELECT set_config('app.tenant_id', 'org_bench', true), set_config('role', 'otto_app', true);
INSERT INTO idempotency_keys (provider, external_id, tenant_id, status, first_processed_at, last_seen_at, attempts)
  VALUES ('callrail', 'pre-call:pgb-' || (:n$m)::text || '-' || (:client_id)::text, 'org_bench', 'processed', now(), now(), 1)
  ON CONFLICT (provider, external_id) DO NOTHING;
INSERT INTO leads (id, company_id, name, phone, email, source, status, assigned_user_id, version, created_at, updated_at)
  VALUES (gen_random_uuid(), 'org_bench', 'Bench Caller', '+1555' || lpad(((:n$m)::bigint % 10000000)::text, 7, '0'), NULL, 'callrail', 'new', NULL, 1, now(), now())
  ON CONFLICT (company_id, phone) DO UPDATE SET company_id = leads.company_id RETURNING *;
INSERT INTO calls (id, company_id, lead_id, provider, provider_call_id, direction, answered, duration_seconds, recording_url, transcript, analysis, booked, status, started_at, created_at, updated_at)
  VALUES (gen_random_uuid(), 'org_bench', NULL, 'callrail', 'pgb-' || (:n$m)::text || '-' || (:client_id)::text, 'inbound', true, 60, NULL, NULL, NULL, false, 'in_progress', NULL, now(), now())
  ON CONFLICT (company_id, provider, provider_call_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at RETURNING *;
INSERT INTO outbox_events (tenant_id, event, envelope, created_at, published_at) VALUES ('org_bench', 'telephony.call.received', '{}', now(), now()), ('org_bench', 'system.webhook.processed', '{}', now(), now());
SQL
done
echo "COMMIT;"
