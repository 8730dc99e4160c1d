//! Calls get the CRM's `notes` (SPEC section 13), and an index on `(company_id, id)` so the calls
//! list pages newest first within a tenant without sorting its whole table.

use sea_orm_migration::prelude::*;

use crate::tables::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("calls")
                    .add_column(ColumnDef::new("notes").text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("calls", &["company_id", "id"], false))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_calls_company_id_id")
                    .table("calls")
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("calls")
                    .drop_column("notes")
                    .to_owned(),
            )
            .await
    }
}
