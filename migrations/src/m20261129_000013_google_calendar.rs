//! Google Calendar sync (SPEC section 15): one connection per company (the sealed refresh token,
//! the push channel, the sync token and the coalescing state of its sync), the single-use OAuth
//! `state` values, and the index finding an appointment by its Google event id. Both tables
//! are tenant-owned: row-level security like every tenant table.

use sea_orm_migration::prelude::*;

use crate::tables::{index, tenant_row_security};

const CONNECTIONS: &str = "calendar_connections";
const STATES: &str = "calendar_oauth_states";

#[derive(DeriveMigrationName)]
pub struct Migration;

fn at(name: &'static str) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.timestamp_with_time_zone();
    column
}

fn connections() -> TableCreateStatement {
    Table::create()
        .table(CONNECTIONS)
        .if_not_exists()
        .col(
            ColumnDef::new("company_id")
                .string()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new("calendar_id").string().not_null())
        .col(ColumnDef::new("refresh_token").text().not_null())
        .col(ColumnDef::new("connected_by").string().not_null())
        .col(ColumnDef::new("channel_id").string().null())
        .col(ColumnDef::new("channel_token_hash").string().null())
        .col(ColumnDef::new("channel_resource_id").string().null())
        .col(at("channel_expires_at").null())
        .col(ColumnDef::new("last_message_number").big_integer().null())
        .col(ColumnDef::new("sync_token").text().null())
        .col(
            ColumnDef::new("sync_pending")
                .boolean()
                .not_null()
                .default(false),
        )
        .col(at("sync_lease_until").null())
        .col(at("last_synced_at").null())
        .col(at("created_at").not_null())
        .col(at("updated_at").not_null())
        .to_owned()
}

fn states() -> TableCreateStatement {
    Table::create()
        .table(STATES)
        .if_not_exists()
        .col(
            ColumnDef::new("state_hash")
                .string()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new("company_id").string().not_null())
        .col(ColumnDef::new("user_id").string().not_null())
        .col(at("expires_at").not_null())
        .col(at("created_at").not_null())
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(connections()).await?;
        manager
            .create_index(index(CONNECTIONS, &["channel_id"], true))
            .await?;
        manager.create_table(states()).await?;
        manager
            .create_index(index(STATES, &["expires_at"], false))
            .await?;
        manager
            .create_index(index(
                "appointments",
                &["company_id", "google_event_id"],
                false,
            ))
            .await?;
        for table in [CONNECTIONS, STATES] {
            tenant_row_security(manager, table).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_appointments_company_id_google_event_id")
                    .table("appointments")
                    .to_owned(),
            )
            .await?;
        for table in [STATES, CONNECTIONS] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
