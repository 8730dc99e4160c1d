//! The dashboard reads a month of a tenant's calls: on PostgreSQL a covering index of
//! `(company_id, created_at)` with what the figures need (`answered`, `booked`, `lead_id` for a
//! rep's figures, and the analysis's objections, copied to their own column) makes that an
//! index-only scan instead of one heap page per call (a tenant's calls share their pages with
//! every other tenant's calls of the same days). SQLite gets the same key with the flags.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

const INDEX: &str = "idx_calls_dashboard";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == DatabaseBackend::Postgres;
        let mut objections = ColumnDef::new("objections");
        if postgres {
            objections.json_binary();
        } else {
            objections.json();
        }
        manager
            .alter_table(
                Table::alter()
                    .table("calls")
                    .add_column(objections.null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if postgres {
            db.execute_unprepared(
                "UPDATE calls SET objections = analysis -> 'objections' WHERE analysis IS NOT NULL",
            )
            .await?;
            db.execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS {INDEX} ON calls (company_id, created_at) \
                 INCLUDE (answered, booked, lead_id, objections)"
            ))
            .await?;
        } else {
            db.execute_unprepared(
                "UPDATE calls SET objections = json_extract(analysis, '$.objections') \
                 WHERE analysis IS NOT NULL",
            )
            .await?;
            db.execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS {INDEX} ON calls (company_id, created_at, answered, booked, lead_id)"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table("calls")
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("calls")
                    .drop_column("objections")
                    .to_owned(),
            )
            .await
    }
}
