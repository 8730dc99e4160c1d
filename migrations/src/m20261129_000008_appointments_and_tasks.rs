//! Appointments and tasks as SPEC section 13 shapes them: an appointment's title, address,
//! notes, call, rep (the `sales_reps` id beside the rep's user id) and version (optimistic
//! locking, like leads); a task's completion time. The rep's conflict check and the task lists
//! read through their own indexes.

use sea_orm_migration::prelude::*;

use crate::tables::{add_columns, drop_columns, index};

/// `(table, column, definition)`; SQLite adds one column per statement.
fn columns() -> Vec<(&'static str, ColumnDef)> {
    vec![
        (
            "appointments",
            ColumnDef::new("title").string().null().to_owned(),
        ),
        (
            "appointments",
            ColumnDef::new("address").text().null().to_owned(),
        ),
        (
            "appointments",
            ColumnDef::new("notes").text().null().to_owned(),
        ),
        (
            "appointments",
            ColumnDef::new("call_id").uuid().null().to_owned(),
        ),
        (
            "appointments",
            ColumnDef::new("rep_id").uuid().null().to_owned(),
        ),
        (
            "appointments",
            ColumnDef::new("version")
                .integer()
                .not_null()
                .default(1)
                .to_owned(),
        ),
        (
            "tasks",
            ColumnDef::new("completed_at")
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ),
    ]
}

const INDEXES: [(&str, &[&str]); 2] = [
    ("appointments", &["company_id", "rep_id", "scheduled_start"]),
    ("tasks", &["company_id", "assignee_user_id", "due_at"]),
];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager, columns()).await?;
        for (table, columns) in INDEXES {
            manager.create_index(index(table, columns, false)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, columns) in INDEXES {
            let name = format!("idx_{table}_{}", columns.join("_"));
            manager
                .drop_index(Index::drop().name(name).table(table).if_exists().to_owned())
                .await?;
        }
        drop_columns(manager, columns()).await
    }
}
