//! Housekeeping jobs the scheduler enqueues: sent outbox rows, silent workers and old schedule
//! slots are deleted so no table grows without bound.

use async_trait::async_trait;
use chrono::{Duration, Utc};
use otto_db::{heartbeats, idempotency, outbox, schedule_runs};
use otto_runtime::AppContext;
use serde_json::Value;

use crate::{JobError, JobHandler, Registry};

pub const PURGE_OUTBOX: &str = "maintenance.purge_outbox";
pub const PURGE_HEARTBEATS: &str = "maintenance.purge_heartbeats";
pub const PURGE_SCHEDULE_RUNS: &str = "maintenance.purge_schedule_runs";
pub const PURGE_IDEMPOTENCY_KEYS: &str = "maintenance.purge_idempotency_keys";

/// Sent events are kept a week for inspection.
const OUTBOX_RETENTION_DAYS: i64 = 7;
/// A worker silent for a day was killed, not paused.
const HEARTBEAT_RETENTION_HOURS: i64 = 24;
const SCHEDULE_RUN_RETENTION_DAYS: i64 = 7;

pub fn register(registry: &mut Registry) {
    registry
        .register(PURGE_OUTBOX, PurgeOutbox)
        .register(PURGE_HEARTBEATS, PurgeHeartbeats)
        .register(PURGE_SCHEDULE_RUNS, PurgeScheduleRuns)
        .register(PURGE_IDEMPOTENCY_KEYS, PurgeIdempotencyKeys);
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
