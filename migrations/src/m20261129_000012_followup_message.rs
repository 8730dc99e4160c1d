//! A sent follow-up names the message that carried it (SPEC section 13: `message_id`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("follow_ups")
                    .add_column(ColumnDef::new("message_id").uuid().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("follow_ups")
                    .drop_column("message_id")
                    .to_owned(),
            )
            .await
    }
}
