//! Webhook idempotency keys (SPEC section 6). A delivery claims `(provider, external_id)` in the
//! same transaction as its domain writes: the key exists exactly when its effects do. A
//! concurrent duplicate's insert waits on the unique index until the first transaction ends,
//! then finds the key (duplicate) or, if the first rolled back, claims it itself.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, ExprTrait, QueryFilter,
};

use crate::entities::idempotency_key::{self, Column, Entity};

pub const STATUS_PROCESSED: &str = "processed";

/// Inserts the key; true when this caller claimed it, false when it already existed.
///
/// # Errors
/// On database failure.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    provider: &str,
    external_id: &str,
    tenant_id: Option<&str>,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    let row = idempotency_key::ActiveModel {
        provider: Set(provider.to_owned()),
        external_id: Set(external_id.to_owned()),
        tenant_id: Set(tenant_id.map(str::to_owned)),
        status: Set(STATUS_PROCESSED.to_owned()),
        first_processed_at: Set(now),
        last_seen_at: Set(now),
        attempts: Set(1),
        ..Default::default()
    };
    let inserted = Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::Provider, Column::ExternalId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(inserted == 1)
}

/// Records another sighting of an already processed key.
///
/// # Errors
/// On database failure.
pub async fn touch<C: ConnectionTrait>(
    conn: &C,
    provider: &str,
    external_id: &str,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::LastSeenAt, Expr::value(Utc::now()))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .filter(Column::Provider.eq(provider))
        .filter(Column::ExternalId.eq(external_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Deletes keys first processed before `cutoff`; returns how many.
///
/// # Errors
/// On database failure.
pub async fn purge_before<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::FirstProcessedAt.lt(cutoff))
        .exec(conn)
        .await?
        .rows_affected)
}
