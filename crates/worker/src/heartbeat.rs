use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use otto_db::heartbeats;
use otto_runtime::AppContext;

pub const INTERVAL: Duration = Duration::from_secs(10);

/// `job_oldest_age_seconds{queue}`: how long the oldest due job of each queue has waited (0 when
/// none waits), so a stuck queue alerts even when it is short.
async fn record_oldest_job_ages(ctx: &AppContext) {
    match ctx.queue.oldest_due().await {
        Ok(oldest) => {
            let now = Utc::now();
            for (queue, due) in oldest {
                let age = due.map_or(0.0, |at| {
                    (now - at).num_milliseconds().max(0) as f64 / 1000.0
                });
                metrics::gauge!("job_oldest_age_seconds", "queue" => queue).set(age);
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not read the oldest jobs"),
    }
}

/// Beats every `INTERVAL` until shutdown, refreshing `job_queue_length` on the way; removes the
/// worker's row when it stops cleanly.
pub async fn beat_until_stopped(
    ctx: AppContext,
    worker_id: String,
    queues: Vec<String>,
    in_flight: Arc<AtomicUsize>,
) {
    let started_at: DateTime<Utc> = Utc::now();
    loop {
        let busy = i32::try_from(in_flight.load(Ordering::Relaxed)).unwrap_or(i32::MAX);
        if let Err(err) = heartbeats::beat(&ctx.db, &worker_id, &queues, busy, started_at).await {
            tracing::warn!(error = %err, worker_id, "heartbeat failed");
        }
        match ctx.queue.lengths().await {
            Ok(lengths) => {
                for (queue, length) in lengths {
                    metrics::gauge!("job_queue_length", "queue" => queue).set(length as f64);
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not read queue lengths"),
        }
        record_oldest_job_ages(&ctx).await;
        tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            () = tokio::time::sleep(INTERVAL) => {}
        }
    }
    if let Err(err) = heartbeats::remove(&ctx.db, &worker_id).await {
        tracing::warn!(error = %err, worker_id, "could not remove heartbeat");
    }
}
