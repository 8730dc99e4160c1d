//! PostgreSQL row-level security on every tenant-owned table, as defence in depth under the
//! application's tenant filters. Tenant-scoped transactions switch to the `otto_app` role and set
//! `app.tenant_id`; the policies let that role see and write only rows of that tenant, so even a
//! query that forgot its filter returns nothing of another tenant. System work (webhook tenant
//! resolution, workers, migrations) runs as the connecting role, which owns the tables and is
//! not subject to the policies. SQLite has no such mechanism: a no-op there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub const APP_ROLE: &str = "otto_app";

/// Tenant-owned tables and the column naming their tenant.
const TENANT_TABLES: [(&str, &str); 14] = [
    ("companies", "id"),
    ("users", "company_id"),
    ("twilio_numbers", "company_id"),
    ("sales_reps", "company_id"),
    ("leads", "company_id"),
    ("calls", "company_id"),
    ("appointments", "company_id"),
    ("tasks", "company_id"),
    ("messages", "company_id"),
    ("follow_ups", "company_id"),
    ("documents", "company_id"),
    ("shunya_jobs", "company_id"),
    ("recording_sessions", "company_id"),
    ("daily_reports", "company_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        // Roles are cluster-wide: another database (or a concurrent migration) may have made it.
        db.execute_unprepared(&format!(
            "DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "DO $$ BEGIN EXECUTE format('GRANT {APP_ROLE} TO %I', current_user); \
             EXCEPTION WHEN others THEN NULL; END $$;"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "GRANT USAGE ON SCHEMA public TO {APP_ROLE}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}; \
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE};"
        ))
        .await?;
        for (table, column) in TENANT_TABLES {
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; \
                 DROP POLICY IF EXISTS tenant_isolation ON {table}; \
                 CREATE POLICY tenant_isolation ON {table} TO {APP_ROLE} \
                   USING ({column} = current_setting('app.tenant_id', true)) \
                   WITH CHECK ({column} = current_setting('app.tenant_id', true));"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, _) in TENANT_TABLES {
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_isolation ON {table}; ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;"
            ))
            .await?;
        }
        Ok(())
    }
}
