//! A sales rep's phone (SPEC section 13: `GET /v1/reps` items carry it).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("sales_reps")
                    .add_column(ColumnDef::new("phone").string().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("sales_reps")
                    .drop_column("phone")
                    .to_owned(),
            )
            .await
    }
}
