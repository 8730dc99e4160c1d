//! The database-backed job queue: persistent in embedded mode (SQLite), and usable on
//! PostgreSQL. A job is enqueued in the caller's transaction, leased by one worker at a time,
//! and handed to another worker once its lease expires (so a killed worker loses nothing).

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, ExprTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entities::queued_job::{self, Column, Entity, Model};

pub const STATUS_QUEUED: &str = "queued";
pub const STATUS_RUNNING: &str = "running";
pub const STATUS_DEAD: &str = "dead";

#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub name: String,
    pub payload: String,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
}

/// Adds a job; visible to workers once `conn`'s transaction commits.
///
/// # Errors
/// On database failure.
pub async fn push<C: ConnectionTrait>(conn: &C, job: NewJob) -> Result<Uuid, DbErr> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    let row = queued_job::ActiveModel {
        id: Set(id),
        queue: Set(job.queue),
        name: Set(job.name),
        payload: Set(job.payload),
        status: Set(STATUS_QUEUED.to_owned()),
        attempts: Set(0),
        max_attempts: Set(job.max_attempts),
        run_at: Set(job.run_at),
        locked_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Entity::insert(row).exec_without_returning(conn).await?;
    Ok(id)
}

/// Leases the next due job of `queues` for `lease`: a queued job whose time has come, or a
/// running one whose previous lease expired (its worker died). Its `attempts` is incremented.
/// One `UPDATE ... WHERE id IN (SELECT ... LIMIT 1 [FOR UPDATE SKIP LOCKED]) RETURNING`, so on
/// SQLite it takes the write lock at once (waiting its turn) instead of upgrading a read lock,
/// and on PostgreSQL concurrent workers skip each other's rows.
///
/// # Errors
/// On database failure.
pub async fn reserve<C: ConnectionTrait>(
    conn: &C,
    queues: &[String],
    lease: Duration,
) -> Result<Option<Model>, DbErr> {
    let now = Utc::now();
    let due = Condition::any()
        .add(
            Condition::all()
                .add(Column::Status.eq(STATUS_QUEUED))
                .add(Column::RunAt.lte(now)),
        )
        .add(
            Condition::all()
                .add(Column::Status.eq(STATUS_RUNNING))
                .add(Column::LockedUntil.lt(now)),
        );
    let next = Query::select()
        .column(Column::Id)
        .from(Entity)
        .and_where(Column::Queue.is_in(queues.iter().cloned()))
        .cond_where(due)
        .order_by(Column::RunAt, Order::Asc)
        .limit(1)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .take();
    let leased = Entity::update_many()
        .col_expr(Column::Status, Expr::value(STATUS_RUNNING))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::LockedUntil, Expr::value(Some(now + lease)))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.in_subquery(next))
        .exec_with_returning(conn)
        .await?;
    Ok(leased.into_iter().next())
}

/// A finished job leaves the queue.
///
/// # Errors
/// On database failure.
pub async fn complete<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<(), DbErr> {
    Entity::delete_by_id(id).exec(conn).await?;
    Ok(())
}

/// A failed attempt: back to the queue at `retry_at`, or dead-lettered when `retry_at` is None.
///
/// # Errors
/// On database failure.
pub async fn fail<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    let (status, run_at) = match retry_at {
        Some(at) => (STATUS_QUEUED, Some(at)),
        None => (STATUS_DEAD, None),
    };
    let mut update = Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(
            Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::LastError, Expr::value(error))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(run_at) = run_at {
        update = update.col_expr(Column::RunAt, Expr::value(run_at));
    }
    update.filter(Column::Id.eq(id)).exec(conn).await?;
    Ok(())
}

/// Extends the lease of a job still running under attempt `attempts` (its worker is alive);
/// false when the job is no longer this attempt's (finished, or taken over after expiry).
///
/// # Errors
/// On database failure.
pub async fn extend<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    attempts: i32,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let extended = Entity::update_many()
        .col_expr(Column::LockedUntil, Expr::value(Some(until)))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(STATUS_RUNNING))
        .filter(Column::Attempts.eq(attempts))
        .exec(conn)
        .await?;
    Ok(extended.rows_affected == 1)
}

/// Returns a leased job to the queue untouched (graceful shutdown), undoing its attempt.
///
/// # Errors
/// On database failure.
pub async fn release<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(STATUS_QUEUED))
        .col_expr(
            Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).sub(1))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(STATUS_RUNNING))
        .exec(conn)
        .await?;
    Ok(())
}

/// Dead-lettered jobs, oldest first.
///
/// # Errors
/// On database failure.
pub async fn dead<C: ConnectionTrait>(conn: &C, limit: u64) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Status.eq(STATUS_DEAD))
        .order_by_asc(Column::UpdatedAt)
        .limit(limit)
        .all(conn)
        .await
}

/// Puts a dead job back in its queue with a fresh attempt budget; false if it is not dead.
///
/// # Errors
/// On database failure.
pub async fn retry_dead<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::Status, Expr::value(STATUS_QUEUED))
        .col_expr(Column::Attempts, Expr::value(0))
        .col_expr(Column::RunAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(STATUS_DEAD))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Per queue, the earliest `run_at` of its queued jobs.
///
/// # Errors
/// On database failure.
pub async fn oldest_queued<C: ConnectionTrait>(
    conn: &C,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::Queue)
        .column_as(Column::RunAt.min(), "oldest")
        .filter(Column::Status.eq(STATUS_QUEUED))
        .group_by(Column::Queue)
        .into_tuple()
        .all(conn)
        .await
}

/// Jobs waiting or running, per queue.
///
/// # Errors
/// On database failure.
pub async fn lengths<C: ConnectionTrait>(conn: &C) -> Result<Vec<(String, i64)>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::Queue)
        .column_as(Column::Id.count(), "count")
        .filter(Column::Status.ne(STATUS_DEAD))
        .group_by(Column::Queue)
        .into_tuple()
        .all(conn)
        .await
}
