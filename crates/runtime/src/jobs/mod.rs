//! The job queue: one trait, two backends. Embedded mode keeps jobs in the database (they
//! survive a restart and can be enqueued inside a domain transaction); distributed mode keeps
//! them in Redis. Both lease a job to one worker and hand it to another if the lease expires.

mod db_queue;
mod redis_queue;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otto_db::TxnConn;
use serde_json::Value;
use std::time::Duration;

pub use db_queue::DbJobQueue;
pub use otto_domain::jobs::{JobKind, NewJob, Queue};
pub use redis_queue::RedisJobQueue;

/// A job leased to this worker; `attempts` counts this attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedJob {
    pub id: String,
    pub queue: String,
    pub name: String,
    pub payload: Value,
    pub attempts: u32,
    pub max_attempts: u32,
}

/// A job that used up its attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadJob {
    pub id: String,
    pub queue: String,
    pub name: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job queue database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("job queue redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("job queue redis pool error: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("stored job is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues `job`; returns its id.
    async fn push(&self, job: NewJob) -> Result<String, QueueError>;
    /// Enqueues `job` as part of `txn` where the backend lives in the database (the job exists
    /// only if `txn` commits); other backends enqueue at once, so callers must tolerate a job
    /// whose transaction then rolls back.
    async fn push_in(&self, txn: &TxnConn, job: NewJob) -> Result<String, QueueError> {
        let _ = txn;
        self.push(job).await
    }
    /// Whether `push_in` really enqueues inside the transaction (the queue lives in the database).
    fn enqueues_in_transaction(&self) -> bool {
        false
    }
    /// Waits until a job may have been pushed to `queues`, at most `timeout` (an idle worker's
    /// pause between polls).
    async fn wait_for_work(&self, queues: &[Queue], timeout: Duration) {
        let _ = queues;
        tokio::time::sleep(timeout).await;
    }
    /// Leases the next due job of `queues` for `lease`, if any.
    async fn reserve(
        &self,
        queues: &[Queue],
        lease: Duration,
    ) -> Result<Option<LeasedJob>, QueueError>;
    /// The job succeeded: it leaves the queue.
    async fn complete(&self, job: &LeasedJob) -> Result<(), QueueError>;
    /// The attempt failed: retry at `retry_at`, or dead-letter when `None`.
    async fn fail(
        &self,
        job: &LeasedJob,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), QueueError>;
    /// Renews the lease of a job this worker is still running; false when the job is no longer
    /// this attempt's.
    async fn extend(&self, job: &LeasedJob, lease: Duration) -> Result<bool, QueueError>;
    /// Hands a leased job back untouched (graceful shutdown).
    async fn release(&self, job: &LeasedJob) -> Result<(), QueueError>;
    /// Jobs waiting or running per queue.
    async fn lengths(&self) -> Result<Vec<(String, u64)>, QueueError>;
    /// Per queue, when its oldest waiting job became due (`None`: nothing waiting); what
    /// `job_oldest_age_seconds` is made of.
    async fn oldest_due(&self) -> Result<Vec<(String, Option<DateTime<Utc>>)>, QueueError>;
    /// Dead-lettered jobs.
    async fn dead(&self, limit: u64) -> Result<Vec<DeadJob>, QueueError>;
    /// Re-enqueues a dead job with a fresh attempt budget; false when `id` is not dead.
    async fn retry_dead(&self, id: &str) -> Result<bool, QueueError>;
}

/// Exponential backoff with jitter for the attempt that just failed (1-based): 2 s, 4 s, 8 s...
/// capped at 10 minutes, each spread over +/-25% so retries of a burst do not arrive together.
pub fn backoff(attempt: u32, base: Duration) -> Duration {
    const CAP: Duration = Duration::from_secs(600);
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)));
    let capped = exp.min(CAP);
    let jitter = 0.75 + 0.5 * random_unit();
    capped.mul_f64(jitter)
}

/// A number in [0, 1) from the standard library's randomly keyed hasher.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_jitter() {
        let base = Duration::from_secs(2);
        for attempt in 1..=5u32 {
            let nominal = 2f64 * 2f64.powi(attempt as i32 - 1);
            let got = backoff(attempt, base).as_secs_f64();
            assert!(
                got >= nominal * 0.75 && got <= nominal * 1.25,
                "{attempt}: {got}"
            );
        }
        assert!(backoff(40, base) <= Duration::from_secs(750));
    }
}
