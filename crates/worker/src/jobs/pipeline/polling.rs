//! `poll-shunya-jobs`: asks UWC about every unfinished job whose next poll is due. A completed
//! ASR job's transcript goes through the same `store_transcript` as the webhook, so whichever
//! arrives second changes nothing.

use async_trait::async_trait;
use chrono::Utc;
use otto_db::entities::shunya_job;
use otto_db::{TenantTxn, shunya_jobs};
use otto_domain::jobs::PollUwcJobs;
use otto_domain::{TenantId, TraceId};
use otto_integrations::uwc::{AsrOutput, JobStatus, UwcClient};
use otto_runtime::AppContext;
use otto_service::transcripts::{fail_transcription, store_transcript};

use super::Pipeline;
use crate::JobError;
use crate::typed::Perform;

/// Jobs asked about per run; the rest wait for the next minute.
const BATCH: u64 = 100;
/// After this many polls (about 20 hours with the backoff below) a job is given up.
const MAX_POLLS: i32 = 40;

#[async_trait]
impl Perform for PollUwcJobs {
    type State = Pipeline;

    async fn perform(self, pipeline: &Pipeline, ctx: &AppContext) -> Result<(), JobError> {
        let Some(uwc) = pipeline.client(true) else {
            return Ok(());
        };
        let due = shunya_jobs::due_for_poll(&ctx.db, Utc::now(), BATCH).await?;
        let mut failures = 0;
        for job in &due {
            if let Err(err) = poll_one(ctx, pipeline, uwc, job).await {
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
            reschedule(ctx, &tenant, job, &job.status, pipeline.poll_delay).await?;
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
        _ => {
            reschedule(
                ctx,
                &tenant,
                job,
                shunya_jobs::PROCESSING,
                pipeline.poll_delay,
            )
            .await
        }
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
    let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
    fail_transcription(&utx, job, reason).await?;
    utx.commit(ctx).await?;
    Ok(())
}

async fn complete(
    ctx: &AppContext,
    tenant: &TenantId,
    job: &shunya_job::Model,
    status: &JobStatus,
    trace: &TraceId,
) -> Result<(), anyhow::Error> {
    let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
    if job.job_type != shunya_jobs::ASR {
        shunya_jobs::complete_once(utx.conn(), job, "polled").await?;
        utx.commit(ctx).await?;
        return Ok(());
    }
    let output: AsrOutput = serde_json::from_value(status.output.clone().unwrap_or_default())?;
    if store_transcript(&utx, job, &output).await? {
        utx.commit(ctx).await?;
    } else {
        utx.rollback().await?;
    }
    Ok(())
}

/// Polls back off from `UWC_POLL_DELAY_SECONDS` to 30 min: a long recording is not asked about
/// every minute.
async fn reschedule(
    ctx: &AppContext,
    tenant: &TenantId,
    job: &shunya_job::Model,
    status: &str,
    base: chrono::Duration,
) -> Result<(), anyhow::Error> {
    let delay = (base * (1 << job.attempts.clamp(0, 10))).min(chrono::Duration::minutes(30));
    let at = Utc::now() + delay;
    let utx = TenantTxn::begin(&ctx.db, tenant, TraceId::generate()).await?;
    shunya_jobs::poll_again(utx.conn(), job, status, at).await?;
    utx.commit(ctx).await?;
    Ok(())
}
