//! More integrations (SPEC section 17): which ASR transcribed a call (`uwc` or `deepgram`), the
//! Bland callback of a missed call (claimed before dialing, so a retried job never dials twice),
//! a lead's address and its property facts, and a company's missed-call callback switch with
//! quiet hours in its time zone. One column per statement: SQLite alters one at a time.

use sea_orm_migration::prelude::*;

use crate::tables::{add_columns, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn columns() -> Vec<(&'static str, ColumnDef)> {
    let mut asr_provider = ColumnDef::new("asr_provider");
    asr_provider.string().null();
    let mut callback_requested_at = ColumnDef::new("callback_requested_at");
    callback_requested_at.timestamp_with_time_zone().null();
    let mut bland_call_id = ColumnDef::new("bland_call_id");
    bland_call_id.string().null();
    let mut address = ColumnDef::new("address");
    address.text().null();
    let mut property = ColumnDef::new("property");
    property.json_binary().null();
    let mut property_status = ColumnDef::new("property_status");
    property_status.string().null();
    let mut callbacks = ColumnDef::new("missed_call_callbacks");
    callbacks.boolean().not_null().default(false);
    let mut quiet_start = ColumnDef::new("quiet_hours_start");
    quiet_start.string().null();
    let mut quiet_end = ColumnDef::new("quiet_hours_end");
    quiet_end.string().null();
    vec![
        ("calls", asr_provider),
        ("calls", callback_requested_at),
        ("calls", bland_call_id),
        ("leads", address),
        ("leads", property),
        ("leads", property_status),
        ("companies", callbacks),
        ("companies", quiet_start),
        ("companies", quiet_end),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager, columns()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, columns()).await
    }
}
