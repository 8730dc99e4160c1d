//! A lead's timeline (SPEC section 13) pages each of its five kinds newest first by
//! `(created_at, id)`: one index per kind on `(company_id, lead_id, created_at, id)`, so a page
//! reads `limit` index entries per kind and never sorts a lead's (or the tenant's) whole history.

use sea_orm_migration::prelude::*;

use crate::tables::index;

const TIMELINE_TABLES: [&str; 5] = ["calls", "messages", "appointments", "tasks", "follow_ups"];
const COLUMNS: [&str; 4] = ["company_id", "lead_id", "created_at", "id"];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TIMELINE_TABLES {
            manager.create_index(index(table, &COLUMNS, false)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TIMELINE_TABLES {
            manager
                .drop_index(
                    Index::drop()
                        .name(format!("idx_{table}_{}", COLUMNS.join("_")))
                        .table(table)
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
