//! `poll-shunya-jobs`: asks UWC about every unfinished job whose next poll is due. A completed
//! ASR job's transcript goes through the same [`store_transcript`] as the webhook, so whichever
//! arrives second changes nothing.

use async_trait::async_trait;
use chrono::Utc;
use otto_db::entities::shunya_job;
use otto_db::{begin_for_tenant, shunya_jobs};
use otto_domain::{TenantId, TraceId};
use otto_integrations::uwc::{AsrOutput, JobStatus, UwcClient};
use otto_runtime::AppContext;
use otto_runtime::jobs::Queue;

use super::Pipeline;
use super::transcripts::{commit_stored, fail_transcription, store_transcript};
use crate::JobError;
use crate::typed::TypedHandler;

/// Jobs asked about per run; the rest wait for the next minute.
const BATCH: u64 = 100;
/// After this many polls (about 20 hours with the backoff below) a job is given up.
const MAX_POLLS: i32 = 40;

crate::scheduled_job!(
    /// The `poll-shunya-jobs` schedule.
    PollShunyaJobs,
    "shunya.poll",
    Queue::Shunya
);

pub(super) struct Poll(pub(super) Pipeline);

#[async_trait]
impl TypedHandler for Poll {
    type Job = PollShunyaJobs;

    async fn handle(&self, _job: PollShunyaJobs, ctx: &AppContext) -> Result<(), JobError> {
        let Some(uwc) = self.0.client(true) else {
            return Ok(());
        };
        let due = shunya_jobs::due_for_poll(&ctx.db, Utc::now(), BATCH).await?;
        let mut failures = 0;
        for job in &due {
            if let Err(err) = poll_one(ctx, &self.0, uwc, job).await {
                failures += 1;
                tracing::warn!(error = %err, shunya_job_id = %job.shunya_job_id, "poll of UWC job failed");
            }
        }
        tracing::info!(polled = due.len(), failures, "polled UWC jobs");
        Ok(())
    }
}

async fn poll_one(
    ctx: &AppContext,
    pipeline: &Pipeline,
    uwc: &UwcClient,
    job: &shunya_job::Model,
) -> Result<(), anyhow::Error> {
    let tenant = TenantId::try_from(job.company_id.as_str())?;
    let trace = TraceId::generate();
    let status = match uwc.job_status(&job.shunya_job_id).await {
        Ok(status) => status,
        Err(err) => {
            reschedule(ctx, job, &job.status, pipeline.poll_delay).await?;
            return Err(err.into());
        }
    };
    match status.status.as_str() {
        "completed" | "succeeded" | "done" => complete(ctx, &tenant, job, &status, &trace).await,
        "failed" | "error" | "cancelled" => {
            give_up(ctx, &tenant, job, "UWC reported the job failed", &trace).await
        }
        _ if job.attempts + 1 >= MAX_POLLS => {
            give_up(ctx, &tenant, job, "no result after polling", &trace).await
        }
        _ => reschedule(ctx, job, shunya_jobs::PROCESSING, pipeline.poll_delay).await,
    }
}

/// Marks the job failed, with its event, once.
async fn give_up(
    ctx: &AppContext,
    tenant: &TenantId,
    job: &shunya_job::Model,
    reason: &str,
    trace: &TraceId,
) -> Result<(), anyhow::Error> {
    let txn = begin_for_tenant(&ctx.db, tenant).await?;
    if let Some(event) = fail_transcription(&txn, tenant, job, reason, trace).await? {
        otto_db::outbox::record(&txn, &event).await?;
    }
    txn.commit().await?;
    ctx.outbox.notify();
    Ok(())
}

async fn complete(
    ctx: &AppContext,
    tenant: &TenantId,
    job: &shunya_job::Model,
    status: &JobStatus,
    trace: &TraceId,
) -> Result<(), anyhow::Error> {
    let txn = begin_for_tenant(&ctx.db, tenant).await?;
    if job.job_type != shunya_jobs::ASR {
        shunya_jobs::complete_once(&txn, job, "polled").await?;
        txn.commit().await?;
        return Ok(());
    }
    let output: AsrOutput = serde_json::from_value(status.output.clone().unwrap_or_default())?;
    let stored = store_transcript(&txn, tenant, job, &output, trace).await?;
    commit_stored(ctx, txn, stored).await?;
    Ok(())
}

/// Polls back off from `UWC_POLL_DELAY_SECONDS` to 30 min: a long recording is not asked about
/// every minute.
async fn reschedule(
    ctx: &AppContext,
    job: &shunya_job::Model,
    status: &str,
    base: chrono::Duration,
) -> Result<(), anyhow::Error> {
    let delay = (base * (1 << job.attempts.clamp(0, 10))).min(chrono::Duration::minutes(30));
    let at = Utc::now() + delay;
    shunya_jobs::poll_again(&ctx.db, job, status, at).await?;
    Ok(())
}
