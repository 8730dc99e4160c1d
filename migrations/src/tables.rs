//! Small builders shared by migrations, so every tenant-owned table has the same spine.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{pk_uuid, string, timestamp_with_time_zone};

/// A tenant-owned table: `id` (UUID), `company_id`, `created_at`, `updated_at`, then `columns`.
pub fn tenant_owned(name: &'static str, columns: Vec<ColumnDef>) -> TableCreateStatement {
    let mut table = Table::create();
    table
        .table(name)
        .if_not_exists()
        .col(pk_uuid("id"))
        .col(string("company_id"));
    for mut column in columns {
        table.col(&mut column);
    }
    table
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"));
    table.take()
}

/// `idx_{table}_{cols}` over `cols`, unique when asked.
pub fn index(table: &'static str, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(format!("idx_{table}_{}", cols.join("_")))
        .table(table)
        .if_not_exists();
    for col in cols {
        index.col(*col);
    }
    if unique {
        index.unique();
    }
    index.take()
}

/// On PostgreSQL: `table` readable and writable by the application role, and only for the
/// tenant its transaction acts for (the policy every tenant table has); nothing on SQLite.
pub async fn tenant_row_security(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let role = crate::m20261122_000002_row_level_security::APP_ROLE;
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role}; \
             ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; \
             DROP POLICY IF EXISTS tenant_isolation ON {table}; \
             CREATE POLICY tenant_isolation ON {table} TO {role} \
               USING (company_id = current_setting('app.tenant_id', true)) \
               WITH CHECK (company_id = current_setting('app.tenant_id', true));"
        ))
        .await?;
    Ok(())
}

/// Adds each `(table, column)`, one `ALTER TABLE` per column (SQLite adds one at a time).
pub async fn add_columns(
    manager: &SchemaManager<'_>,
    columns: Vec<(&'static str, ColumnDef)>,
) -> Result<(), DbErr> {
    for (table, mut column) in columns {
        manager
            .alter_table(
                Table::alter()
                    .table(table)
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// Drops each `(table, column)` that [`add_columns`] added.
pub async fn drop_columns(
    manager: &SchemaManager<'_>,
    columns: Vec<(&'static str, ColumnDef)>,
) -> Result<(), DbErr> {
    for (table, column) in columns {
        let name = column.get_column_name();
        manager
            .alter_table(Table::alter().table(table).drop_column(name).to_owned())
            .await?;
    }
    Ok(())
}
