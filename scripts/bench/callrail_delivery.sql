-- The statements one CallRail pre-call delivery runs (see crates/api/src/webhooks), with a fresh
-- call id each time, for pgbench -f. Tenant lookups run before the transaction, as in Otto; the
-- transaction acts for the tenant under row-level security (the tenant unit of work). The outbox
-- rows are written as published, so the running Otto's relay leaves them alone.
\set n random(1, 2000000000)
SELECT * FROM companies WHERE callrail_company_id = 'CRBENCH' LIMIT 1;
SELECT * FROM companies WHERE id = 'org_bench' LIMIT 1;
BEGIN;
SELECT set_config('app.tenant_id', 'org_bench', true), set_config('role', 'otto_app', true);
INSERT INTO idempotency_keys (provider, external_id, tenant_id, status, first_processed_at, last_seen_at, attempts)
  VALUES ('callrail', 'pre-call:pg-' || (:n)::text || '-' || (:client_id)::text, 'org_bench', 'processed', now(), now(), 1)
  ON CONFLICT (provider, external_id) DO NOTHING;
INSERT INTO leads (id, company_id, name, phone, email, source, status, assigned_user_id, version, created_at, updated_at)
  VALUES (gen_random_uuid(), 'org_bench', 'Bench Caller', '+1555' || lpad(((:n)::bigint % 10000000)::text, 7, '0'), NULL, 'callrail', 'new', NULL, 1, now(), now())
  ON CONFLICT (company_id, phone) DO NOTHING;
SELECT * FROM leads WHERE company_id = 'org_bench' AND phone = '+1555' || lpad(((:n)::bigint % 10000000)::text, 7, '0') LIMIT 1;
INSERT INTO calls (id, company_id, lead_id, provider, provider_call_id, direction, answered, duration_seconds, recording_url, transcript, analysis, booked, status, started_at, created_at, updated_at)
  VALUES (gen_random_uuid(), 'org_bench', NULL, 'callrail', 'pg-' || (:n)::text || '-' || (:client_id)::text, 'inbound', true, 60, NULL, NULL, NULL, false, 'in_progress', NULL, now(), now())
  ON CONFLICT (company_id, provider, provider_call_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at;
SELECT * FROM calls WHERE company_id = 'org_bench' AND provider = 'callrail' AND provider_call_id = 'pg-' || (:n)::text || '-' || (:client_id)::text LIMIT 1;
INSERT INTO outbox_events (tenant_id, event, envelope, created_at, published_at) VALUES ('org_bench', 'telephony.call.received', '{}', now(), now());
INSERT INTO outbox_events (tenant_id, event, envelope, created_at, published_at) VALUES ('org_bench', 'system.webhook.processed', '{}', now(), now());
COMMIT;
