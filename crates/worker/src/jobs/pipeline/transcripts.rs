//! Step 1: transcription. `asr.transcribe` submits the recording; the transcript comes back by
//! webhook or by polling, and both hand it to the service layer's `store_transcript`, which
//! applies it once.

use async_trait::async_trait;
use chrono::Utc;
use otto_db::{TenantTxn, shunya_jobs};
use otto_domain::jobs::TranscribeCall;
use otto_integrations::uwc::AsrBatchRequest;
use otto_runtime::AppContext;
use otto_service::calls::load_call;

use super::Pipeline;
use crate::JobError;
use crate::typed::Perform;

#[async_trait]
impl Perform for TranscribeCall {
    type State = Pipeline;

    async fn perform(self, pipeline: &Pipeline, ctx: &AppContext) -> Result<(), JobError> {
        let job = self;
        let Some(uwc) = pipeline.client(pipeline.features.asr) else {
            if !super::fallback::transcribe(
                pipeline,
                ctx,
                &job.tenant_id,
                job.call_id,
                &job.trace_id,
            )
            .await?
            {
                tracing::info!(call_id = %job.call_id, "no ASR configured; call left untranscribed");
            }
            return Ok(());
        };
        let Some(call) = load_call(&ctx.db, &job.tenant_id, job.call_id).await? else {
            // Its delivery rolled back, or the call was deleted: nothing to transcribe.
            tracing::info!(call_id = %job.call_id, "call not found; nothing to transcribe");
            return Ok(());
        };
        let Some(audio_url) = super::audio_url(ctx, &call).await? else {
            return Ok(());
        };
        let tenant = &job.tenant_id;
        if shunya_jobs::for_call(&ctx.db, tenant, call.id, shunya_jobs::ASR)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let submitted = uwc
            .submit_asr_batch(&AsrBatchRequest {
                company_id: tenant.to_string(),
                call_id: call.id.to_string(),
                audio_url,
                language: None,
                callback_url: pipeline.callback_url.clone(),
            })
            .await;
        let accepted = match submitted {
            Ok(accepted) => accepted,
            Err(err) => {
                // UWC refused, or stayed down through its client's retries: the fallback ASR.
                tracing::warn!(call_id = %call.id, error = %err, "UWC ASR failed; trying Deepgram");
                if super::fallback::transcribe(pipeline, ctx, tenant, job.call_id, &job.trace_id)
                    .await?
                {
                    return Ok(());
                }
                return Err(super::uwc_failure(err));
            }
        };
        // UWC answers a repeated submission (same Idempotency-Key) with the same job, which
        // the unique (company, job id) then records once.
        let utx = TenantTxn::begin(&ctx.db, tenant, job.trace_id.clone()).await?;
        let recorded = shunya_jobs::record_submitted(
            utx.conn(),
            shunya_jobs::Submitted {
                tenant,
                shunya_job_id: &accepted.job_id,
                job_type: shunya_jobs::ASR,
                call_id: Some(call.id),
                poll_at: Utc::now() + pipeline.poll_delay,
            },
        )
        .await?;
        utx.commit(ctx).await?;
        tracing::info!(call_id = %call.id, shunya_job_id = %accepted.job_id, recorded, "recording submitted for transcription");
        Ok(())
    }
}
