//! The acknowledgement layer: the backend's middleware around every job apalis runs. It keeps
//! the job's lease while it runs, records the outcome in Otto's queue (complete; retry with
//! backoff and jitter; dead letter once `max_attempts` are used; durable, so a crash loses no
//! retry), hands a job still running when the shutdown grace runs out back to the queue, and
//! reports `worker_task_total`, `worker_task_duration_ms` and `worker.task.*` events, all inside
//! the job's span (carrying the trace id of the request that enqueued it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis::prelude::BoxDynError;
use chrono::Utc;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use otto_db::TenantTxn;
use otto_domain::catalog::{WORKER_TASK_FAILED, WORKER_TASK_FINISHED};
use otto_domain::{Severity, TenantId, TraceId};
use otto_runtime::AppContext;
use otto_runtime::jobs::{LeasedJob, backoff};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::JobError;
use crate::backend::JobTask;
use crate::registry::job_error;

#[derive(Clone)]
pub struct AckLayer {
    acker: Arc<Acker>,
}

struct Acker {
    ctx: AppContext,
    lease: Duration,
    retry_base: Duration,
    in_flight: Arc<AtomicUsize>,
}

impl AckLayer {
    pub(crate) fn new(
        ctx: AppContext,
        lease: Duration,
        retry_base: Duration,
        in_flight: Arc<AtomicUsize>,
    ) -> Self {
        Self {
            acker: Arc::new(Acker {
                ctx,
                lease,
                retry_base,
                in_flight,
            }),
        }
    }
}

impl<S> Layer<S> for AckLayer {
    type Service = AckService<S>;

    fn layer(&self, inner: S) -> AckService<S> {
        AckService {
            inner,
            acker: self.acker.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AckService<S> {
    inner: S,
    acker: Arc<Acker>,
}

impl<S> Service<JobTask> for AckService<S>
where
    S: Service<JobTask>,
    S::Error: Into<BoxDynError>,
    S::Future: Send + 'static,
{
    type Response = ();
    /// Never an error: the outcome is recorded in the queue, so apalis sees every job succeed.
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<(), BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxDynError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: JobTask) -> Self::Future {
        let job = task.args.clone();
        let running = self
            .inner
            .call(task)
            .map(|result| result.map(|_| ()).map_err(|err| job_error(err.into())));
        let acker = self.acker.clone();
        async move {
            acker.run(&job, running).await;
            Ok(())
        }
        .boxed()
    }
}

impl Acker {
    async fn run(&self, job: &LeasedJob, running: impl Future<Output = Result<(), JobError>>) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let span = job_span(job);
        let started = Instant::now();
        let grace = self.ctx.config.http.shutdown_grace;
        let shutdown = self.ctx.shutdown.clone();
        let deadline = async move {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let outcome = async {
            tokio::select! {
                result = running => Some(result),
                () = deadline => None,
                never = self.keep_leased(job) => match never {},
            }
        }
        .instrument(span.clone())
        .await;
        match outcome {
            Some(result) => {
                self.settle(job, result, started.elapsed())
                    .instrument(span)
                    .await;
            }
            None => {
                let _entered = span.enter();
                tracing::warn!("job still running at shutdown; returned to the queue");
                if let Err(err) = self.ctx.queue.release(job).await {
                    tracing::error!(error = %err, "could not return job; its lease will expire");
                }
            }
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Renews the job's lease every third of it while the job runs, so only a dead worker's jobs
    /// are taken over, however long they run. Never returns: the job's own branch ends first.
    async fn keep_leased(&self, job: &LeasedJob) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(self.lease / 3).await;
            match self.ctx.queue.extend(job, self.lease).await {
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

    async fn settle(&self, job: &LeasedJob, result: Result<(), JobError>, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        metrics::histogram!("worker_task_duration_ms", "name" => job.name.clone()).record(ms);
        let (status, settled) = match &result {
            Ok(()) => ("success", self.ctx.queue.complete(job).await),
            Err(err) => {
                let retry_at = match err {
                    JobError::Retryable(_) if job.attempts < job.max_attempts => {
                        let delay = backoff(job.attempts, self.retry_base);
                        Some(Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default())
                    }
                    _ => None,
                };
                let status = if retry_at.is_some() { "retry" } else { "dead" };
                tracing::warn!(error = %err, attempts = job.attempts, status, "job failed");
                let recorded = self
                    .ctx
                    .queue
                    .fail(job, &format!("{err:#}"), retry_at)
                    .await;
                (status, recorded)
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
        let Some(tenant) = tenant_of(job) else {
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

fn tenant_of(job: &LeasedJob) -> Option<TenantId> {
    job.payload
        .get("tenant_id")
        .and_then(|v| v.as_str())
        .and_then(|t| TenantId::try_from(t).ok())
}

fn trace_of(job: &LeasedJob) -> Option<TraceId> {
    job.payload
        .get("trace_id")
        .and_then(|v| v.as_str())
        .and_then(TraceId::parse)
}

fn job_span(job: &LeasedJob) -> tracing::Span {
    let trace = trace_of(job).map(|t| t.to_string());
    let tenant = tenant_of(job).map(|t| t.to_string());
    tracing::info_span!("job", job = %job.name, job_id = %job.id, queue = %job.queue, attempt = job.attempts, trace_id = trace, tenant_id = tenant)
}
