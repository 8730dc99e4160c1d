use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use otto_db::TenantTxn;
use otto_domain::catalog::{WORKER_TASK_FAILED, WORKER_TASK_FINISHED};
use otto_domain::{Severity, TenantId, TraceId};
use otto_runtime::AppContext;
use otto_runtime::jobs::{LeasedJob, Queue, backoff};
use tracing::Instrument;

use crate::heartbeat;
use crate::{JobError, Registry};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub queues: Vec<Queue>,
    /// Slots shared by the queues without slots of their own.
    pub concurrency: usize,
    /// Queues with slots of their own, so a flood on one cannot starve another.
    pub dedicated: Vec<(Queue, usize)>,
    /// How long a job may run before another worker may take it over.
    pub lease: Duration,
    /// How long to wait between polls of an empty queue.
    pub idle_poll: Duration,
    /// First retry delay; doubled per attempt.
    pub retry_base: Duration,
}

impl WorkerSettings {
    pub fn from_context(ctx: &AppContext) -> Self {
        Self {
            queues: ctx.config.worker.queues.clone(),
            concurrency: ctx.config.worker.concurrency.max(1),
            dedicated: ctx
                .config
                .worker
                .queue_concurrency
                .iter()
                .filter(|(queue, _)| ctx.config.worker.queues.contains(queue))
                .copied()
                .collect(),
            lease: ctx.config.worker.lease,
            idle_poll: Duration::from_millis(500),
            retry_base: Duration::from_secs(2),
        }
    }
}

impl WorkerSettings {
    /// Each group of queues with its number of slots: one group per dedicated queue, and the
    /// rest of `queues` sharing `concurrency` slots.
    pub fn pools(&self) -> Vec<(Vec<Queue>, usize)> {
        let mut pools: Vec<(Vec<Queue>, usize)> = self
            .dedicated
            .iter()
            .map(|(queue, count)| (vec![*queue], *count))
            .collect();
        let shared: Vec<Queue> = self
            .queues
            .iter()
            .filter(|queue| !self.dedicated.iter().any(|(d, _)| d == *queue))
            .copied()
            .collect();
        if !shared.is_empty() {
            pools.push((shared, self.concurrency.max(1)));
        }
        pools
    }
}

/// A pool of `concurrency` slots, each leasing and running one job at a time.
pub struct Worker {
    ctx: AppContext,
    registry: Arc<Registry>,
    settings: WorkerSettings,
    id: String,
    in_flight: Arc<AtomicUsize>,
}

impl Worker {
    pub fn new(ctx: AppContext, registry: Registry, settings: WorkerSettings) -> Self {
        let id = format!(
            "worker-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            ctx,
            registry: Arc::new(registry),
            settings,
            id,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until the context's shutdown token is cancelled; in-flight jobs get
    /// `shutdown_grace` to finish, then are handed back to the queue.
    pub async fn run(self) {
        let queues: Vec<String> = self
            .settings
            .queues
            .iter()
            .map(|q| q.as_str().to_owned())
            .collect();
        tracing::info!(worker_id = %self.id, queues = %queues.join(","), concurrency = self.settings.concurrency, "worker started");
        let heartbeat = tokio::spawn(heartbeat::beat_until_stopped(
            self.ctx.clone(),
            self.id.clone(),
            queues,
            self.in_flight.clone(),
        ));
        let slots: Vec<_> = self
            .settings
            .pools()
            .into_iter()
            .flat_map(|(queues, count)| (0..count).map(move |_| queues.clone()))
            .map(|queues| tokio::spawn(self.slot(queues)))
            .collect();
        for slot in slots {
            let _ = slot.await;
        }
        let _ = heartbeat.await;
        tracing::info!(worker_id = %self.id, "worker stopped");
    }

    fn slot(&self, queues: Vec<Queue>) -> impl Future<Output = ()> + Send + 'static {
        let slot = Slot {
            queues,
            ctx: self.ctx.clone(),
            registry: self.registry.clone(),
            settings: self.settings.clone(),
            in_flight: self.in_flight.clone(),
        };
        async move { slot.run().await }
    }
}

struct Slot {
    queues: Vec<Queue>,
    ctx: AppContext,
    registry: Arc<Registry>,
    settings: WorkerSettings,
    in_flight: Arc<AtomicUsize>,
}

impl Slot {
    async fn run(self) {
        let shutdown = self.ctx.shutdown.clone();
        while !shutdown.is_cancelled() {
            match self
                .ctx
                .queue
                .reserve(&self.queues, self.settings.lease)
                .await
            {
                Ok(Some(job)) => self.process(job).await,
                Ok(None) => self.idle().await,
                Err(err) => {
                    tracing::warn!(error = %err, "could not lease a job");
                    self.idle().await;
                }
            }
        }
    }

    async fn idle(&self) {
        tokio::select! {
            () = self.ctx.shutdown.cancelled() => {}
            () = self.ctx.queue.wait_for_work(&self.queues, self.settings.idle_poll) => {}
        }
    }

    async fn process(&self, job: LeasedJob) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let grace = self.ctx.config.http.shutdown_grace;
        let shutdown = self.ctx.shutdown.clone();
        let deadline = async move {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let span = job_span(&job);
        let started = Instant::now();
        let outcome = tokio::select! {
            result = self.execute(&job).instrument(span.clone()) => Some(result),
            () = deadline => None,
            never = self.keep_leased(&job) => match never {},
        };
        let _entered = span.enter();
        match outcome {
            Some(result) => self.settle(&job, result, started.elapsed()).await,
            None => {
                tracing::warn!("job still running at shutdown; returned to the queue");
                if let Err(err) = self.ctx.queue.release(&job).await {
                    tracing::error!(error = %err, "could not return job; its lease will expire");
                }
            }
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Renews the job's lease every third of it while the job runs, so only a dead worker's jobs
    /// are taken over, however long they run. Never returns: the job's own branch ends first.
    async fn keep_leased(&self, job: &LeasedJob) -> std::convert::Infallible {
        let lease = self.settings.lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            match self.ctx.queue.extend(job, lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("job lease lost; leaving the job to its new holder");
                    // Keep running the attempt: its effects are idempotent, and stopping midway
                    // would not be safer. The lease is simply no longer renewed.
                    return std::future::pending().await;
                }
                Err(err) => tracing::warn!(error = %err, "could not renew a job lease"),
            }
        }
    }

    async fn execute(&self, job: &LeasedJob) -> Result<(), JobError> {
        let Some(handler) = self.registry.get(&job.name) else {
            return Err(JobError::Permanent(anyhow::anyhow!(
                "no handler for job '{}'",
                job.name
            )));
        };
        handler.run(&job.payload, &self.ctx).await
    }

    async fn settle(&self, job: &LeasedJob, result: Result<(), JobError>, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        metrics::histogram!("worker_task_duration_ms", "name" => job.name.clone()).record(ms);
        let (status, settled) = match &result {
            Ok(()) => ("success", self.ctx.queue.complete(job).await),
            Err(err) => {
                let retry_at = match err {
                    JobError::Retryable(_) if job.attempts < job.max_attempts => {
                        let delay = backoff(job.attempts, self.settings.retry_base);
                        Some(Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default())
                    }
                    _ => None,
                };
                let status = if retry_at.is_some() { "retry" } else { "dead" };
                tracing::warn!(error = %err, attempts = job.attempts, status, "job failed");
                (
                    status,
                    self.ctx
                        .queue
                        .fail(job, &format!("{err:#}"), retry_at)
                        .await,
                )
            }
        };
        metrics::counter!("worker_task_total", "name" => job.name.clone(), "status" => status)
            .increment(1);
        if let Err(err) = settled {
            tracing::error!(error = %err, "could not record job outcome; its lease will expire");
        }
        self.emit_outcome(job, &result, ms).await;
    }

    /// `worker.task.finished|failed`, for jobs that belong to a tenant.
    async fn emit_outcome(&self, job: &LeasedJob, result: &Result<(), JobError>, ms: f64) {
        let Some(tenant) = job
            .payload
            .get("tenant_id")
            .and_then(|v| v.as_str())
            .and_then(|t| TenantId::try_from(t).ok())
        else {
            return;
        };
        let trace = trace_of(job).unwrap_or_else(TraceId::generate);
        let (event, severity, error) = match result {
            Ok(()) => (WORKER_TASK_FINISHED, Severity::Info, None),
            Err(err) => (WORKER_TASK_FAILED, Severity::Error, Some(err.to_string())),
        };
        let data = serde_json::json!({
            "task_id": job.id, "name": job.name, "queue": job.queue,
            "attempts": job.attempts, "duration_ms": ms.round(), "error": error,
        });
        let recorded = async {
            let utx = TenantTxn::begin(&self.ctx.db, &tenant, trace).await?;
            utx.emit(utx.event(event, data).with_severity(severity));
            utx.commit(&self.ctx).await
        };
        if let Err(err) = recorded.await {
            tracing::warn!(error = %err, "could not record task event");
        }
    }
}

fn trace_of(job: &LeasedJob) -> Option<TraceId> {
    job.payload
        .get("trace_id")
        .and_then(|v| v.as_str())
        .and_then(TraceId::parse)
}

fn job_span(job: &LeasedJob) -> tracing::Span {
    let trace = trace_of(job).map(|t| t.to_string());
    let tenant = job
        .payload
        .get("tenant_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    tracing::info_span!("job", job = %job.name, job_id = %job.id, queue = %job.queue, trace_id = trace, tenant_id = tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedicated_queues_get_their_own_slots_and_the_rest_share() {
        let settings = WorkerSettings {
            queues: vec![Queue::Default, Queue::Asr, Queue::Analysis],
            concurrency: 3,
            dedicated: vec![(Queue::Asr, 2)],
            lease: Duration::from_secs(1),
            idle_poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
        };
        assert_eq!(
            settings.pools(),
            vec![
                (vec![Queue::Asr], 2),
                (vec![Queue::Default, Queue::Analysis], 3)
            ]
        );
    }
}
