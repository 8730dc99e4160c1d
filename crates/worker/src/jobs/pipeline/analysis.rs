//! Step 2: `analysis.run` stores a transcript's objections, sentiment, booking intent and key
//! signals on the call, once (the service layer's `store_analysis` applies only while
//! `analysis` is empty), and enqueues the follow-up draft in the same unit of work.

use async_trait::async_trait;
use otto_db::TenantTxn;
use otto_domain::jobs::{AnalyseCall, DraftFollowup};
use otto_integrations::uwc::AnalysisRequest;
use otto_runtime::AppContext;
use otto_service::calls::load_call;
use otto_service::transcripts::store_analysis;

use super::Pipeline;
use crate::JobError;
use crate::typed::Perform;

#[async_trait]
impl Perform for AnalyseCall {
    type State = Pipeline;

    async fn perform(self, pipeline: &Pipeline, ctx: &AppContext) -> Result<(), JobError> {
        let job = self;
        let Some(uwc) = pipeline.client(pipeline.features.asr) else {
            return Ok(());
        };
        let tenant = &job.tenant_id;
        let Some(call) = load_call(&ctx.db, tenant, job.call_id).await? else {
            return Ok(());
        };
        let Some(transcript) = call.transcript.clone().filter(|_| call.analysis.is_none()) else {
            return Ok(());
        };
        let analysis = uwc
            .analyze_call(&AnalysisRequest {
                company_id: tenant.to_string(),
                call_id: call.id.to_string(),
                transcript,
            })
            .await
            .map_err(super::uwc_failure)?;
        let stored = serde_json::to_value(&analysis).map_err(|e| JobError::Permanent(e.into()))?;
        let utx = TenantTxn::begin(&ctx.db, tenant, job.trace_id.clone()).await?;
        if !store_analysis(&utx, &call, stored).await? {
            // Another run stored it first.
            utx.rollback().await?;
            return Ok(());
        }
        utx.enqueue(&DraftFollowup {
            tenant_id: tenant.clone(),
            call_id: call.id.into(),
            trace_id: job.trace_id.clone(),
        })?;
        utx.commit(ctx).await?;
        Ok(())
    }
}
