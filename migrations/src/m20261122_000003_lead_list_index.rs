//! Lead lists are ordered by id (time-ordered UUIDs) within a tenant: an index on
//! `(company_id, id)` serves every page without scanning other tenants' rows.

use sea_orm_migration::prelude::*;

use crate::tables::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index("leads", &["company_id", "id"], false))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_leads_company_id_id")
                    .table("leads")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
