//! The transactional outbox: an event is written in the same transaction as the change that
//! caused it, and relayed to the event bus only after that transaction commits. A rollback
//! leaves no event; a crash after commit leaves the row, which the relay sends on restart.

use chrono::{DateTime, Utc};
use otto_domain::EventEnvelope;
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entities::outbox_event::{self, Column, Entity};

/// Records `envelope` for publication once `conn`'s transaction commits.
///
/// # Errors
/// On database failure (the caller's transaction should then roll back).
pub async fn record<C: ConnectionTrait>(conn: &C, envelope: &EventEnvelope) -> Result<i64, DbErr> {
    let json = serde_json::to_string(envelope).map_err(|e| DbErr::Json(e.to_string()))?;
    let row = outbox_event::ActiveModel {
        tenant_id: Set(envelope.tenant_id.to_string()),
        event: Set(envelope.event.clone()),
        envelope: Set(json),
        created_at: Set(Utc::now()),
        published_at: Set(None),
        ..Default::default()
    };
    Ok(Entity::insert(row).exec(conn).await?.last_insert_id)
}

/// Records several events with one statement (a delivery's events, say).
///
/// # Errors
/// On database failure.
pub async fn record_all<C: ConnectionTrait>(
    conn: &C,
    envelopes: &[EventEnvelope],
) -> Result<(), DbErr> {
    let now = Utc::now();
    let rows = envelopes
        .iter()
        .map(|envelope| {
            let json = serde_json::to_string(envelope).map_err(|e| DbErr::Json(e.to_string()))?;
            Ok(outbox_event::ActiveModel {
                tenant_id: Set(envelope.tenant_id.to_string()),
                event: Set(envelope.event.clone()),
                envelope: Set(json),
                created_at: Set(now),
                published_at: Set(None),
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    if rows.is_empty() {
        return Ok(());
    }
    Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Up to `limit` unpublished events, oldest first. Inside a transaction on PostgreSQL the rows
/// are locked and rows locked by another relay are skipped, so two replicas never send the
/// same batch.
///
/// # Errors
/// On database failure. A row whose JSON no longer parses is returned as an error entry.
pub async fn pending<C: ConnectionTrait>(
    conn: &C,
    limit: u64,
) -> Result<Vec<(i64, Result<EventEnvelope, serde_json::Error>)>, DbErr> {
    let rows = Entity::find()
        .filter(Column::PublishedAt.is_null())
        .order_by_asc(Column::Id)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.id, serde_json::from_str(&row.envelope)))
        .collect())
}

/// Marks events as sent.
///
/// # Errors
/// On database failure.
pub async fn mark_published<C: ConnectionTrait>(conn: &C, ids: &[i64]) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    Entity::update_many()
        .col_expr(
            Column::PublishedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(Column::Id.is_in(ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Deletes sent events published before `cutoff`; returns how many.
///
/// # Errors
/// On database failure.
pub async fn purge_published<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::PublishedAt.lt(cutoff))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// How many events wait to be sent.
///
/// # Errors
/// On database failure.
pub async fn backlog<C: ConnectionTrait>(conn: &C) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    Entity::find()
        .filter(Column::PublishedAt.is_null())
        .count(conn)
        .await
}
