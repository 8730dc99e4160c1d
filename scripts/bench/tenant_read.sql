-- The four statements a tenant list read cost before reads went out in one batch (BEGIN, the
-- row-level security context, the page of GET /v1/leads?limit=50, COMMIT), for pgbench -f.
BEGIN;
SELECT set_config('app.tenant_id', 'org_bench', true), set_config('role', 'otto_app', true);
SELECT * FROM leads WHERE company_id = 'org_bench' ORDER BY id DESC LIMIT 51;
COMMIT;
