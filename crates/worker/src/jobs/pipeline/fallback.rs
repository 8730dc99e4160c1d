//! The fallback ASR (SPEC section 17): Deepgram transcribes a call's recording when UWC ASR is
//! off, when UWC refused or stayed unreachable through its client's retries, or when UWC reported
//! the job failed (`asr.deepgram`, enqueued with the failure). The transcript goes through the
//! same `apply_transcript` as UWC's, marked `asr_provider: deepgram`: the first transcript of a
//! call wins, so a late UWC result never makes a second one.

use async_trait::async_trait;
use otto_db::TenantTxn;
use otto_domain::jobs::TranscribeWithDeepgram;
use otto_domain::{CallId, TenantId, TraceId};
use otto_runtime::AppContext;
use otto_service::calls::load_call;
use otto_service::transcripts::{DEEPGRAM, Transcript, apply_transcript};

use super::Pipeline;
use crate::JobError;
use crate::typed::Perform;

/// Transcribes `call_id` with Deepgram if it has a recording and no transcript yet. False when
/// Deepgram is not configured (nothing done).
pub(super) async fn transcribe(
    pipeline: &Pipeline,
    ctx: &AppContext,
    tenant: &TenantId,
    call_id: CallId,
    trace: &TraceId,
) -> Result<bool, JobError> {
    let Some(deepgram) = pipeline.deepgram.as_deref() else {
        return Ok(false);
    };
    let Some(call) = load_call(&ctx.db, tenant, call_id).await? else {
        return Ok(true);
    };
    let Some(audio_url) = super::audio_url(ctx, &call).await? else {
        return Ok(true);
    };
    let done = deepgram.transcribe_url(&audio_url).await.map_err(|err| {
        if err.is_permanent() {
            JobError::Permanent(err.into())
        } else {
            JobError::Retryable(err.into())
        }
    })?;
    let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
    let transcript = Transcript {
        text: &done.transcript,
        duration_seconds: done.duration_seconds,
        language: None,
        provider: DEEPGRAM,
        reference: done.request_id.as_deref().unwrap_or_default(),
    };
    let written = apply_transcript(&utx, call.id, &transcript)
        .await
        .map_err(|e| JobError::Retryable(e.into()))?;
    utx.commit(ctx)
        .await
        .map_err(|e| JobError::Retryable(e.into()))?;
    tracing::info!(call_id = %call.id, written, "call transcribed by Deepgram");
    Ok(true)
}

#[async_trait]
impl Perform for TranscribeWithDeepgram {
    type State = Pipeline;

    async fn perform(self, pipeline: &Pipeline, ctx: &AppContext) -> Result<(), JobError> {
        if !transcribe(pipeline, ctx, &self.tenant_id, self.call_id, &self.trace_id).await? {
            tracing::info!(call_id = %self.call_id, "no fallback ASR (DEEPGRAM_API_KEY unset)");
        }
        Ok(())
    }
}
