//! Outbound SMS (SPEC sections 13 and 17): the stored answers of `Idempotency-Key` requests,
//! per company (row-level security like every tenant table), and the time a send first tried
//! Twilio, so a retry after a crash looks for the message before sending again.

use sea_orm_migration::prelude::*;

use crate::tables::{index, tenant_row_security};

const TABLE: &str = "api_idempotency_keys";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TABLE)
                    .if_not_exists()
                    .col(ColumnDef::new("company_id").string().not_null())
                    .col(ColumnDef::new("idempotency_key").string().not_null())
                    .col(ColumnDef::new("fingerprint").string().not_null())
                    .col(ColumnDef::new("state").string().not_null())
                    .col(ColumnDef::new("response_status").integer().null())
                    .col(ColumnDef::new("response_body").text().null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("updated_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("company_id").col("idempotency_key"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(TABLE, &["created_at"], false))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("messages")
                    .add_column(
                        ColumnDef::new("send_attempted_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        tenant_row_security(manager, TABLE).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("messages")
                    .drop_column("send_attempted_at")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(TABLE).if_exists().to_owned())
            .await
    }
}
