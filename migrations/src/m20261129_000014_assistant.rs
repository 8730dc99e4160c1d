//! The AI receptionist (SPEC section 16): per-company settings (the widget key is unique across
//! companies: it names the company to the public widget) and visitors' feedback. Both are
//! tenant-owned: row-level security like every tenant table.

use sea_orm_migration::prelude::*;

use crate::tables::{index, tenant_owned, tenant_row_security};

const SETTINGS: &str = "assistant_settings";
const FEEDBACK: &str = "assistant_feedback";

#[derive(DeriveMigrationName)]
pub struct Migration;

fn at(name: &'static str) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.timestamp_with_time_zone().not_null();
    column
}

fn settings() -> TableCreateStatement {
    Table::create()
        .table(SETTINGS)
        .if_not_exists()
        .col(
            ColumnDef::new("company_id")
                .string()
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new("enabled")
                .boolean()
                .not_null()
                .default(false),
        )
        .col(ColumnDef::new("greeting").text().not_null())
        .col(ColumnDef::new("business_hours").text().not_null())
        .col(ColumnDef::new("services").text().not_null())
        .col(ColumnDef::new("transfer_number").string().null())
        .col(ColumnDef::new("slot_minutes").integer().not_null())
        .col(ColumnDef::new("min_notice_minutes").integer().not_null())
        .col(ColumnDef::new("widget_allowed_origins").text().not_null())
        .col(ColumnDef::new("widget_key").string().not_null())
        .col(at("created_at"))
        .col(at("updated_at"))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(settings()).await?;
        manager
            .create_index(index(SETTINGS, &["widget_key"], true))
            .await?;
        manager
            .create_table(tenant_owned(
                FEEDBACK,
                vec![
                    ColumnDef::new("session_id").string().not_null().to_owned(),
                    ColumnDef::new("rating").integer().not_null().to_owned(),
                    ColumnDef::new("comment").text().null().to_owned(),
                ],
            ))
            .await?;
        manager
            .create_index(index(FEEDBACK, &["company_id", "created_at"], false))
            .await?;
        for table in [SETTINGS, FEEDBACK] {
            tenant_row_security(manager, table).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [FEEDBACK, SETTINGS] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
