//! Worker heartbeats, kept in the database so `/ready` and `/internal/worker/heartbeat` read the
//! same thing in embedded mode and with any number of worker replicas.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use crate::entities::worker_heartbeat::{self, Column, Entity, Model};

/// Records that `worker_id` is alive now.
///
/// # Errors
/// On database failure.
pub async fn beat<C: ConnectionTrait>(
    conn: &C,
    worker_id: &str,
    queues: &[String],
    in_flight: i32,
    started_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = worker_heartbeat::ActiveModel {
        worker_id: Set(worker_id.to_owned()),
        queues: Set(queues.join(",")),
        in_flight: Set(in_flight),
        started_at: Set(started_at),
        last_beat: Set(Utc::now()),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::WorkerId)
                .update_columns([Column::Queues, Column::InFlight, Column::LastBeat])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Workers that beat since `since`, most recent first.
///
/// # Errors
/// On database failure.
pub async fn live_since<C: ConnectionTrait>(
    conn: &C,
    since: DateTime<Utc>,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::LastBeat.gte(since))
        .order_by_desc(Column::LastBeat)
        .all(conn)
        .await
}

/// A worker that stops cleanly removes itself.
///
/// # Errors
/// On database failure.
pub async fn remove<C: ConnectionTrait>(conn: &C, worker_id: &str) -> Result<(), DbErr> {
    Entity::delete_by_id(worker_id.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// Forgets workers silent since `cutoff` (killed ones never remove themselves).
///
/// # Errors
/// On database failure.
pub async fn purge_before<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::LastBeat.lt(cutoff))
        .exec(conn)
        .await?
        .rows_affected)
}
