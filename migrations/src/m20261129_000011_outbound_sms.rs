//! Outbound SMS (SPEC sections 13 and 17): the stored answers of `Idempotency-Key` requests,
//! per company (row-level security like every tenant table), and the time a send first tried
//! Twilio, so a retry after a crash looks for the message before sending again.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

use crate::m20261122_000002_row_level_security::APP_ROLE;
use crate::tables::index;

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
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO {APP_ROLE}; \
                     ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY; \
                     DROP POLICY IF EXISTS tenant_isolation ON {TABLE}; \
                     CREATE POLICY tenant_isolation ON {TABLE} TO {APP_ROLE} \
                       USING (company_id = current_setting('app.tenant_id', true)) \
                       WITH CHECK (company_id = current_setting('app.tenant_id', true));"
                ))
                .await?;
        }
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
