//! Documents, recording sessions and rep training (SPEC section 14): a document's size and
//! uploader, a recording session's lead, stored audio and resulting call, a call's recording
//! kept in Otto's object storage (instead of a provider URL), and a rep's UWC training job.
//! One column per statement: SQLite alters one at a time.

use sea_orm_migration::prelude::*;

use crate::tables::{add_columns, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn column(name: &'static str, define: impl FnOnce(&mut ColumnDef)) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    define(&mut column);
    column
}

fn columns() -> Vec<(&'static str, ColumnDef)> {
    vec![
        (
            "documents",
            column("size_bytes", |c| {
                c.big_integer().not_null().default(0);
            }),
        ),
        (
            "documents",
            column("created_by", |c| {
                c.string().null();
            }),
        ),
        (
            "recording_sessions",
            column("lead_id", |c| {
                c.uuid().null();
            }),
        ),
        (
            "recording_sessions",
            column("content_type", |c| {
                c.string().null();
            }),
        ),
        (
            "recording_sessions",
            column("size_bytes", |c| {
                c.big_integer().null();
            }),
        ),
        (
            "recording_sessions",
            column("call_id", |c| {
                c.uuid().null();
            }),
        ),
        (
            "calls",
            column("recording_key", |c| {
                c.string().null();
            }),
        ),
        (
            "sales_reps",
            column("training_status", |c| {
                c.string().null();
            }),
        ),
        (
            "sales_reps",
            column("training_job_id", |c| {
                c.string().null();
            }),
        ),
        (
            "sales_reps",
            column("trained_at", |c| {
                c.timestamp_with_time_zone().null();
            }),
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager, columns()).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recording_sessions_status_expires")
                    .table("recording_sessions")
                    .col("status")
                    .col("expires_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_recording_sessions_status_expires")
                    .table("recording_sessions")
                    .to_owned(),
            )
            .await?;
        drop_columns(manager, columns()).await
    }
}
