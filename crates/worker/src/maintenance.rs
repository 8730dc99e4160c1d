//! Housekeeping jobs the scheduler enqueues: sent outbox rows, silent workers and old schedule
//! slots are deleted so no table grows without bound.

use async_trait::async_trait;
use chrono::{Duration, Utc};
use otto_db::entities::{recording_session, task};
use otto_db::{heartbeats, idempotency, outbox, schedule_runs};
use otto_runtime::AppContext;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::{JobError, JobHandler, Registry};

pub const PURGE_OUTBOX: &str = "maintenance.purge_outbox";
pub const PURGE_HEARTBEATS: &str = "maintenance.purge_heartbeats";
pub const PURGE_SCHEDULE_RUNS: &str = "maintenance.purge_schedule_runs";
pub const PURGE_IDEMPOTENCY_KEYS: &str = "maintenance.purge_idempotency_keys";
/// Does nothing: for smoke checks of a deployment and the queue benchmark.
pub const NOOP: &str = "system.noop";
pub const CLEANUP_OLD_TASKS: &str = "maintenance.cleanup_old_tasks";
pub const CLEANUP_EPHEMERAL_SESSIONS: &str = "maintenance.cleanup_ephemeral_sessions";

/// Sent events are kept a week for inspection.
const OUTBOX_RETENTION_DAYS: i64 = 7;
/// A worker silent for a day was killed, not paused.
const HEARTBEAT_RETENTION_HOURS: i64 = 24;
const SCHEDULE_RUN_RETENTION_DAYS: i64 = 7;
/// Finished tasks stay visible for a quarter, then go.
const FINISHED_TASK_RETENTION_DAYS: i64 = 90;
const FINISHED_TASK_STATUSES: [&str; 3] = ["completed", "done", "cancelled"];
/// An expired recording session is kept a week for support questions, then deleted.
const EXPIRED_SESSION_RETENTION_DAYS: i64 = 7;

pub fn register(registry: &mut Registry) {
    registry
        .register(PURGE_OUTBOX, PurgeOutbox)
        .register(PURGE_HEARTBEATS, PurgeHeartbeats)
        .register(PURGE_SCHEDULE_RUNS, PurgeScheduleRuns)
        .register(PURGE_IDEMPOTENCY_KEYS, PurgeIdempotencyKeys)
        .register(NOOP, Noop)
        .register(CLEANUP_OLD_TASKS, CleanupOldTasks)
        .register(CLEANUP_EPHEMERAL_SESSIONS, CleanupEphemeralSessions);
}

pub struct Noop;

#[async_trait]
impl JobHandler for Noop {
    async fn run(&self, _payload: &Value, _ctx: &AppContext) -> Result<(), JobError> {
        Ok(())
    }
}

pub struct PurgeOutbox;

#[async_trait]
impl JobHandler for PurgeOutbox {
    async fn run(&self, _payload: &Value, ctx: &AppContext) -> Result<(), JobError> {
        let purged =
            outbox::purge_published(&ctx.db, Utc::now() - Duration::days(OUTBOX_RETENTION_DAYS))
                .await?;
        tracing::info!(purged, "purged sent outbox events");
        Ok(())
    }
}

pub struct PurgeHeartbeats;

#[async_trait]
impl JobHandler for PurgeHeartbeats {
    async fn run(&self, _payload: &Value, ctx: &AppContext) -> Result<(), JobError> {
        let cutoff = Utc::now() - Duration::hours(HEARTBEAT_RETENTION_HOURS);
        let purged = heartbeats::purge_before(&ctx.db, cutoff).await?;
        tracing::info!(purged, "purged silent worker heartbeats");
        Ok(())
    }
}

pub struct PurgeScheduleRuns;

#[async_trait]
impl JobHandler for PurgeScheduleRuns {
    async fn run(&self, _payload: &Value, ctx: &AppContext) -> Result<(), JobError> {
        let cutoff = Utc::now() - Duration::days(SCHEDULE_RUN_RETENTION_DAYS);
        let purged = schedule_runs::purge_before(&ctx.db, cutoff).await?;
        tracing::info!(purged, "purged old schedule slots");
        Ok(())
    }
}

/// Webhook idempotency keys older than `IDEMPOTENCY_TTL_DAYS` (90): providers stop retrying
/// long before that.
pub struct PurgeIdempotencyKeys;

#[async_trait]
impl JobHandler for PurgeIdempotencyKeys {
    async fn run(&self, _payload: &Value, ctx: &AppContext) -> Result<(), JobError> {
        let cutoff = Utc::now() - Duration::days(i64::from(ctx.config.idempotency_ttl_days));
        let purged = idempotency::purge_before(&ctx.db, cutoff).await?;
        metrics::counter!("webhook_idempotency_purged_total").increment(purged);
        tracing::info!(purged, "purged expired webhook idempotency keys");
        Ok(())
    }
}

/// Tasks finished more than `FINISHED_TASK_RETENTION_DAYS` ago, across tenants.
pub struct CleanupOldTasks;

#[async_trait]
impl JobHandler for CleanupOldTasks {
    async fn run(&self, _payload: &Value, ctx: &AppContext) -> Result<(), JobError> {
        let cutoff = Utc::now() - Duration::days(FINISHED_TASK_RETENTION_DAYS);
        let deleted = task::Entity::delete_many()
            .filter(task::Column::Status.is_in(FINISHED_TASK_STATUSES))
            .filter(task::Column::UpdatedAt.lt(cutoff))
            .exec(&ctx.db)
            .await?
            .rows_affected;
        tracing::info!(deleted, "cleaned up old finished tasks");
        Ok(())
    }
}

/// Recording sessions past `expires_at` and never completed become `expired`; expired ones are
/// deleted a week later.
pub struct CleanupEphemeralSessions;

#[async_trait]
impl JobHandler for CleanupEphemeralSessions {
    async fn run(&self, _payload: &Value, ctx: &AppContext) -> Result<(), JobError> {
        let now = Utc::now();
        let expired = recording_session::Entity::update_many()
            .col_expr(recording_session::Column::Status, Expr::value("expired"))
            .col_expr(recording_session::Column::UpdatedAt, Expr::value(now))
            .filter(recording_session::Column::ExpiresAt.lt(now))
            .filter(recording_session::Column::Status.is_not_in(["completed", "expired"]))
            .exec(&ctx.db)
            .await?
            .rows_affected;
        let deleted = recording_session::Entity::delete_many()
            .filter(recording_session::Column::Status.eq("expired"))
            .filter(
                recording_session::Column::ExpiresAt
                    .lt(now - Duration::days(EXPIRED_SESSION_RETENTION_DAYS)),
            )
            .exec(&ctx.db)
            .await?
            .rows_affected;
        tracing::info!(expired, deleted, "cleaned up ephemeral recording sessions");
        Ok(())
    }
}
