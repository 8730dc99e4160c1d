//! Housekeeping jobs the scheduler enqueues: sent outbox rows, silent workers and old schedule
//! slots are deleted so no table grows without bound.

use async_trait::async_trait;
use chrono::{Duration, Utc};
use otto_db::entities::{api_idempotency_key, task};
use otto_db::{heartbeats, idempotency, outbox, schedule_runs};
use otto_domain::jobs::{
    CleanupEphemeralSessions, CleanupOldTasks, Noop, PurgeHeartbeats, PurgeIdempotencyKeys,
    PurgeOutbox, PurgeScheduleRuns,
};
use otto_runtime::AppContext;
use otto_runtime::storage::ObjectKey;
use otto_service::recordings;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::typed::Perform;
use crate::{JobError, Registry};

/// Sent events are kept a week for inspection.
const OUTBOX_RETENTION_DAYS: i64 = 7;
/// A worker silent for a day was killed, not paused.
const HEARTBEAT_RETENTION_HOURS: i64 = 24;
const SCHEDULE_RUN_RETENTION_DAYS: i64 = 7;
/// Finished tasks stay visible for a quarter, then go.
const FINISHED_TASK_RETENTION_DAYS: i64 = 90;
const FINISHED_TASK_STATUSES: [&str; 3] = ["completed", "done", "cancelled"];

pub fn register(registry: &mut Registry) {
    registry
        .add::<PurgeOutbox>(())
        .add::<PurgeHeartbeats>(())
        .add::<PurgeScheduleRuns>(())
        .add::<PurgeIdempotencyKeys>(())
        .add::<Noop>(())
        .add::<CleanupOldTasks>(())
        .add::<CleanupEphemeralSessions>(());
}

#[async_trait]
impl Perform for Noop {
    type State = ();

    async fn perform(self, _: &(), _ctx: &AppContext) -> Result<(), JobError> {
        Ok(())
    }
}

#[async_trait]
impl Perform for PurgeOutbox {
    type State = ();

    async fn perform(self, _: &(), ctx: &AppContext) -> Result<(), JobError> {
        let purged =
            outbox::purge_published(&ctx.db, Utc::now() - Duration::days(OUTBOX_RETENTION_DAYS))
                .await?;
        tracing::info!(purged, "purged sent outbox events");
        Ok(())
    }
}

#[async_trait]
impl Perform for PurgeHeartbeats {
    type State = ();

    async fn perform(self, _: &(), ctx: &AppContext) -> Result<(), JobError> {
        let cutoff = Utc::now() - Duration::hours(HEARTBEAT_RETENTION_HOURS);
        let purged = heartbeats::purge_before(&ctx.db, cutoff).await?;
        tracing::info!(purged, "purged silent worker heartbeats");
        Ok(())
    }
}

#[async_trait]
impl Perform for PurgeScheduleRuns {
    type State = ();

    async fn perform(self, _: &(), ctx: &AppContext) -> Result<(), JobError> {
        let cutoff = Utc::now() - Duration::days(SCHEDULE_RUN_RETENTION_DAYS);
        let purged = schedule_runs::purge_before(&ctx.db, cutoff).await?;
        tracing::info!(purged, "purged old schedule slots");
        Ok(())
    }
}

/// Webhook idempotency keys older than `IDEMPOTENCY_TTL_DAYS` (90): providers stop retrying
/// long before that.
#[async_trait]
impl Perform for PurgeIdempotencyKeys {
    type State = ();

    async fn perform(self, _: &(), ctx: &AppContext) -> Result<(), JobError> {
        let cutoff = Utc::now() - Duration::days(i64::from(ctx.config.worker.idempotency_ttl_days));
        let purged = idempotency::purge_before(&ctx.db, cutoff).await?;
        metrics::counter!("webhook_idempotency_purged_total").increment(purged);
        // `Idempotency-Key`s of API requests answer for 24 hours (SPEC section 13).
        let requests = api_idempotency_key::Entity::delete_many()
            .filter(api_idempotency_key::Column::CreatedAt.lt(Utc::now() - Duration::hours(24)))
            .exec(&ctx.db)
            .await?
            .rows_affected;
        tracing::info!(purged, requests, "purged expired idempotency keys");
        Ok(())
    }
}

/// Tasks finished more than `FINISHED_TASK_RETENTION_DAYS` ago, across tenants.
#[async_trait]
impl Perform for CleanupOldTasks {
    type State = ();

    async fn perform(self, _: &(), ctx: &AppContext) -> Result<(), JobError> {
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

/// Open recording sessions past `expires_at` are deleted with their audio (the object first:
/// a crash between the two leaves a row the next run deletes, never an orphaned object).
#[async_trait]
impl Perform for CleanupEphemeralSessions {
    type State = ();

    async fn perform(self, _: &(), ctx: &AppContext) -> Result<(), JobError> {
        const BATCH: u64 = 200;
        let mut deleted = 0;
        loop {
            let sessions = recordings::expired(&ctx.db, Utc::now(), BATCH).await?;
            let last_batch = (sessions.len() as u64) < BATCH;
            for session in sessions {
                if let Some(key) = session.audio_key {
                    ctx.storage
                        .delete(&ObjectKey::stored(key))
                        .await
                        .map_err(|err| JobError::Retryable(err.into()))?;
                }
                recordings::delete_expired(&ctx.db, session.id).await?;
                deleted += 1;
            }
            if last_batch {
                break;
            }
        }
        tracing::info!(deleted, "cleaned up expired recording sessions");
        Ok(())
    }
}
