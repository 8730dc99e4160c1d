-- The statements one booking runs (otto_service::appointments::book, no external_id, no call),
-- as one transaction under the tenant's row-level security, for pgbench -f. Slots are random, so
-- a conflict is as rare as in the wrk run.
\set g random(1, 1000000000)
\set rep (:g % 200) + 1
\set lead (:g % 20000) + 1
\set hour :g / 200
BEGIN;
SELECT set_config('app.tenant_id', 'org_bench', true), set_config('role', 'otto_app', true);
UPDATE leads SET status = 'booked', version = version + 1, updated_at = now()
  WHERE company_id = 'org_bench' AND id = ('00000000-0000-4000-9000-' || lpad((:lead)::text, 12, '0'))::uuid;
SELECT * FROM companies WHERE id = 'org_bench' LIMIT 1;
UPDATE sales_reps SET updated_at = now() WHERE company_id = 'org_bench'
  AND id = ('00000000-0000-4000-8000-' || lpad((:rep)::text, 12, '0'))::uuid AND active = true;
SELECT * FROM sales_reps WHERE company_id = 'org_bench' AND id = ('00000000-0000-4000-8000-' || lpad((:rep)::text, 12, '0'))::uuid LIMIT 1;
SELECT id FROM appointments WHERE company_id = 'org_bench'
  AND rep_id = ('00000000-0000-4000-8000-' || lpad((:rep)::text, 12, '0'))::uuid
  AND scheduled_start > TIMESTAMPTZ '2030-01-01' + (:hour) * interval '1 hour' - interval '24 hours'
  AND scheduled_start < TIMESTAMPTZ '2030-01-01' + (:hour) * interval '1 hour' + interval '30 minutes'
  AND scheduled_end > TIMESTAMPTZ '2030-01-01' + (:hour) * interval '1 hour'
  AND status = 'scheduled' LIMIT 1;
INSERT INTO appointments (id, company_id, lead_id, rep_user_id, rep_id, external_id, scheduled_start, scheduled_end,
                          status, google_event_id, title, address, notes, call_id, version, created_at, updated_at)
  VALUES (gen_random_uuid(), 'org_bench', ('00000000-0000-4000-9000-' || lpad((:lead)::text, 12, '0'))::uuid,
          'user_rep_' || (:rep)::text, ('00000000-0000-4000-8000-' || lpad((:rep)::text, 12, '0'))::uuid, NULL,
          TIMESTAMPTZ '2030-01-01' + (:hour) * interval '1 hour',
          TIMESTAMPTZ '2030-01-01' + (:hour) * interval '1 hour' + interval '30 minutes',
          'scheduled', NULL, 'Bench visit', NULL, NULL, NULL, 1, now(), now())
  ON CONFLICT (company_id, external_id) DO NOTHING;
SELECT * FROM leads WHERE company_id = 'org_bench' AND id = ('00000000-0000-4000-9000-' || lpad((:lead)::text, 12, '0'))::uuid LIMIT 1;
INSERT INTO outbox_events (tenant_id, event, envelope, created_at, published_at) VALUES ('org_bench', 'appointment.created', '{}', now(), NULL);
INSERT INTO outbox_events (tenant_id, event, envelope, created_at, published_at) VALUES ('org_bench', 'lead.updated', '{}', now(), NULL);
INSERT INTO outbox_events (tenant_id, event, envelope, created_at, published_at) VALUES ('org_bench', 'appointment.assigned', '{}', now(), NULL);
COMMIT;
