//! Step 1: transcription. `asr.transcribe` submits the recording; the transcript comes back by
//! webhook or by polling, and both hand it to [`store_transcript`], which applies it once.

use async_trait::async_trait;
use chrono::Utc;
use otto_db::entities::{call, shunya_job};
use otto_db::{DbErr, shunya_jobs};
use otto_domain::{EventEnvelope, TenantId, TraceId};
use otto_integrations::uwc::{AsrBatchRequest, AsrOutput};
use otto_runtime::AppContext;
use otto_runtime::jobs::PendingJobs;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{AnalyseCall, Pipeline, TRANSCRIPT_READY, TRANSCRIPTION_FAILED, TranscribeCall};
use crate::JobError;
use crate::typed::{JobKind, TypedHandler};

pub(super) struct Transcribe(pub(super) Pipeline);

#[async_trait]
impl TypedHandler for Transcribe {
    type Job = TranscribeCall;

    async fn handle(&self, job: TranscribeCall, ctx: &AppContext) -> Result<(), JobError> {
        let Some(uwc) = self.0.client(self.0.features.asr) else {
            tracing::info!(call_id = %job.call_id, "UWC ASR is off; call left untranscribed");
            return Ok(());
        };
        let Some(call) = super::load_call(ctx, &job.tenant_id, job.call_id).await? else {
            // Its delivery rolled back, or the call was deleted: nothing to transcribe.
            tracing::info!(call_id = %job.call_id, "call not found; nothing to transcribe");
            return Ok(());
        };
        let Some(audio_url) = call
            .recording_url
            .clone()
            .filter(|_| call.transcript.is_none())
        else {
            return Ok(());
        };
        let tenant = &job.tenant_id;
        if shunya_jobs::for_call(&ctx.db, tenant, call.id, shunya_jobs::ASR)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let accepted = uwc
            .submit_asr_batch(&AsrBatchRequest {
                company_id: tenant.to_string(),
                call_id: call.id.to_string(),
                audio_url,
                language: None,
                callback_url: self.0.callback_url.clone(),
            })
            .await
            .map_err(super::uwc_failure)?;
        // UWC answers a repeated submission (same Idempotency-Key) with the same job, which
        // the unique (company, job id) then records once.
        let recorded = shunya_jobs::record_submitted(
            &ctx.db,
            shunya_jobs::Submitted {
                tenant,
                shunya_job_id: &accepted.job_id,
                job_type: shunya_jobs::ASR,
                call_id: Some(call.id),
                poll_at: Utc::now() + self.0.poll_delay,
            },
        )
        .await?;
        tracing::info!(call_id = %call.id, shunya_job_id = %accepted.job_id, recorded, "recording submitted for transcription");
        Ok(())
    }
}

/// A transcript applied to its call: the events to record and the next step to enqueue, both
/// part of the caller's transaction.
pub struct TranscriptStored {
    pub events: Vec<EventEnvelope>,
    pub jobs: PendingJobs,
    pub minutes: f64,
}

/// Applies `output` of the ASR `job` to its call, unless this very output was applied before
/// (`None`: a webhook after polling, a poll after the webhook, a retried delivery).
///
/// # Errors
/// On database failure.
pub async fn store_transcript(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    job: &shunya_job::Model,
    output: &AsrOutput,
    trace: &TraceId,
) -> Result<Option<TranscriptStored>, DbErr> {
    if !shunya_jobs::complete_once(txn, job, &output.hash()).await? {
        return Ok(None);
    }
    let Some(call_id) = job.call_id else {
        return Ok(None);
    };
    let call = call::Entity::find_by_id(call_id)
        .filter(call::Column::CompanyId.eq(tenant.as_str()))
        .one(txn)
        .await?;
    let Some(call) = call else {
        return Ok(None);
    };
    call::Entity::update_many()
        .col_expr(
            call::Column::Transcript,
            Expr::value(output.transcript.clone()),
        )
        .col_expr(call::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(call::Column::Id.eq(call.id))
        .filter(call::Column::CompanyId.eq(tenant.as_str()))
        .exec(txn)
        .await?;
    let seconds = output
        .duration_seconds
        .or(call.duration_seconds.map(f64::from))
        .unwrap_or(0.0);
    let event = super::call_event(
        TRANSCRIPT_READY,
        tenant,
        trace,
        &call,
        json!({
            "call_id": call.id,
            "shunya_job_id": job.shunya_job_id,
            "duration_seconds": seconds,
            "language": output.language,
        }),
    );
    let mut jobs = PendingJobs::default();
    jobs.add(
        AnalyseCall {
            tenant_id: tenant.clone(),
            call_id: call.id,
            trace_id: trace.clone(),
        }
        .to_job(),
    );
    Ok(Some(TranscriptStored {
        events: vec![event],
        jobs,
        minutes: seconds / 60.0,
    }))
}

/// Marks the ASR `job` failed (UWC gave up, or polling did); the event when this call did.
///
/// # Errors
/// On database failure.
pub async fn fail_transcription(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    job: &shunya_job::Model,
    reason: &str,
    trace: &TraceId,
) -> Result<Option<EventEnvelope>, DbErr> {
    if !shunya_jobs::fail_once(txn, job).await? {
        return Ok(None);
    }
    let envelope = EventEnvelope::new(
        TRANSCRIPTION_FAILED,
        tenant.clone(),
        trace.clone(),
        json!({ "call_id": job.call_id, "shunya_job_id": job.shunya_job_id, "reason": reason }),
    )
    .with_severity(otto_domain::Severity::Warning);
    Ok(Some(envelope))
}

/// Commits a transcript stored by a job (polling): events, next job, minutes.
///
/// # Errors
/// On database failure.
pub(super) async fn commit_stored(
    ctx: &AppContext,
    txn: DatabaseTransaction,
    stored: Option<TranscriptStored>,
) -> Result<(), DbErr> {
    let Some(mut stored) = stored else {
        return txn.rollback().await;
    };
    otto_db::outbox::record_all(&txn, &stored.events).await?;
    stored
        .jobs
        .stage(ctx.queue.as_ref(), &txn)
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    txn.commit().await?;
    ctx.outbox.notify();
    count_asr_minutes(stored.minutes);
    stored.jobs.release(ctx.queue.as_ref()).await;
    Ok(())
}

/// Adds transcribed audio to `asr_minutes_total`. The counter is an integer, so seconds are
/// summed per process and the counter moves by whole minutes: no call's fraction is lost.
pub fn count_asr_minutes(minutes: f64) {
    static MILLISECONDS: AtomicU64 = AtomicU64::new(0);
    let added = (minutes.max(0.0) * 60_000.0).round() as u64;
    let before = MILLISECONDS.fetch_add(added, Ordering::Relaxed);
    let whole = (before + added) / 60_000 - before / 60_000;
    metrics::counter!("asr_minutes_total").increment(whole);
}
