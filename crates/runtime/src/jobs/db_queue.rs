use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otto_db::TxnConn;
use otto_db::entities::queued_job;
use otto_db::job_store;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{DeadJob, JobQueue, LeasedJob, NewJob, Queue, QueueError};

/// Jobs in the `job_queue` table of the application database.
#[derive(Clone)]
pub struct DbJobQueue {
    db: DatabaseConnection,
    /// Wakes this process's idle workers on a push (embedded mode: pusher and worker share it).
    pushed: Arc<Notify>,
}

impl DbJobQueue {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            pushed: Arc::new(Notify::new()),
        }
    }
}

fn parse_id(id: &str) -> Option<Uuid> {
    Uuid::parse_str(id).ok()
}

impl TryFrom<queued_job::Model> for LeasedJob {
    type Error = QueueError;

    fn try_from(row: queued_job::Model) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id.to_string(),
            queue: row.queue,
            name: row.name,
            payload: serde_json::from_str(&row.payload)?,
            attempts: row.attempts.max(0) as u32,
            max_attempts: row.max_attempts.max(0) as u32,
        })
    }
}

fn stored(job: NewJob) -> Result<job_store::NewJob, QueueError> {
    Ok(job_store::NewJob {
        queue: job.queue.as_str().to_owned(),
        name: job.name,
        payload: serde_json::to_string(&job.payload)?,
        max_attempts: i32::try_from(job.max_attempts).unwrap_or(i32::MAX),
        run_at: job.run_at,
    })
}

#[async_trait]
impl JobQueue for DbJobQueue {
    async fn push(&self, job: NewJob) -> Result<String, QueueError> {
        let id = job_store::push(&self.db, stored(job)?).await?;
        self.pushed.notify_waiters();
        Ok(id.to_string())
    }

    async fn push_in(&self, txn: &TxnConn, job: NewJob) -> Result<String, QueueError> {
        // Not notified: the job is invisible until the caller commits; the next poll finds it.
        Ok(job_store::push(txn, stored(job)?).await?.to_string())
    }

    async fn wait_for_work(&self, _queues: &[Queue], timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.pushed.notified()).await;
    }

    fn enqueues_in_transaction(&self) -> bool {
        true
    }

    async fn reserve(
        &self,
        queues: &[Queue],
        lease: Duration,
    ) -> Result<Option<LeasedJob>, QueueError> {
        let names: Vec<String> = queues.iter().map(|q| q.as_str().to_owned()).collect();
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        job_store::reserve(&self.db, &names, lease)
            .await?
            .map(LeasedJob::try_from)
            .transpose()
    }

    async fn complete(&self, job: &LeasedJob) -> Result<(), QueueError> {
        let Some(id) = parse_id(&job.id) else {
            return Ok(());
        };
        Ok(job_store::complete(&self.db, id).await?)
    }

    async fn fail(
        &self,
        job: &LeasedJob,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), QueueError> {
        let Some(id) = parse_id(&job.id) else {
            return Ok(());
        };
        Ok(job_store::fail(&self.db, id, error, retry_at).await?)
    }

    async fn extend(&self, job: &LeasedJob, lease: Duration) -> Result<bool, QueueError> {
        let Some(id) = parse_id(&job.id) else {
            return Ok(false);
        };
        let until = chrono::Utc::now()
            + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        let attempts = i32::try_from(job.attempts).unwrap_or(i32::MAX);
        Ok(job_store::extend(&self.db, id, attempts, until).await?)
    }

    async fn release(&self, job: &LeasedJob) -> Result<(), QueueError> {
        let Some(id) = parse_id(&job.id) else {
            return Ok(());
        };
        Ok(job_store::release(&self.db, id).await?)
    }

    async fn lengths(&self) -> Result<Vec<(String, u64)>, QueueError> {
        Ok(job_store::lengths(&self.db)
            .await?
            .into_iter()
            .map(|(queue, n)| (queue, n.max(0) as u64))
            .collect())
    }

    async fn oldest_due(&self) -> Result<Vec<(String, Option<DateTime<Utc>>)>, QueueError> {
        let due = job_store::oldest_queued(&self.db).await?;
        Ok(Queue::ALL
            .iter()
            .map(|queue| {
                let at = due
                    .iter()
                    .find(|(q, _)| q == queue.as_str())
                    .map(|(_, at)| *at);
                (queue.as_str().to_owned(), at)
            })
            .collect())
    }

    async fn dead(&self, limit: u64) -> Result<Vec<DeadJob>, QueueError> {
        Ok(job_store::dead(&self.db, limit)
            .await?
            .into_iter()
            .map(|row| DeadJob {
                id: row.id.to_string(),
                queue: row.queue,
                name: row.name,
                attempts: row.attempts.max(0) as u32,
                last_error: row.last_error,
            })
            .collect())
    }

    async fn retry_dead(&self, id: &str) -> Result<bool, QueueError> {
        let Some(id) = parse_id(id) else {
            return Ok(false);
        };
        Ok(job_store::retry_dead(&self.db, id).await?)
    }
}
