//! Guards of the call pipeline: one follow-up draft per call and channel (a job retried after a
//! crash, or the webhook racing the job, inserts nothing twice), and a lookup of a call's
//! UWC jobs.

use sea_orm_migration::prelude::*;

use crate::tables::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &[&str], bool); 2] = [
    ("follow_ups", &["company_id", "call_id", "channel"], true),
    ("shunya_jobs", &["company_id", "call_id"], false),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, cols, unique) in INDEXES {
            manager.create_index(index(table, cols, unique)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, cols, _) in INDEXES {
            manager
                .drop_index(
                    Index::drop()
                        .name(format!("idx_{table}_{}", cols.join("_")))
                        .table(table)
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
