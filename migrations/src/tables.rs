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
