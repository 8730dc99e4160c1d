-- The page query of GET /v1/leads?limit=50 alone, for pgbench -f -M prepared: no transaction,
-- no row-level security context. No client that reads the page can do fewer statements, so
-- this is PostgreSQL's ceiling for the list on this machine.
SELECT * FROM leads WHERE company_id = 'org_bench' ORDER BY id DESC LIMIT 51;
