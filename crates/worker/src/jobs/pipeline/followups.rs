//! Step 3: `followups.draft` stores a follow-up draft for an analysed call, once per call and
//! channel (the service layer's `store_draft`; a retried or duplicated job inserts nothing).

use async_trait::async_trait;
use otto_db::TenantTxn;
use otto_domain::jobs::DraftFollowup;
use otto_integrations::uwc::{CallAnalysis, FollowupRequest};
use otto_runtime::AppContext;
use otto_service::calls::load_call;
use otto_service::followups::{has_draft, store_draft};

use super::Pipeline;
use crate::JobError;
use crate::typed::Perform;

/// Drafts are texts: the channel home-services customers answer.
const CHANNEL: &str = "sms";

#[async_trait]
impl Perform for DraftFollowup {
    type State = Pipeline;

    async fn perform(self, pipeline: &Pipeline, ctx: &AppContext) -> Result<(), JobError> {
        let job = self;
        let Some(uwc) = pipeline.client(pipeline.features.followups) else {
            return Ok(());
        };
        let tenant = &job.tenant_id;
        let Some(call) = load_call(&ctx.db, tenant, job.call_id).await? else {
            return Ok(());
        };
        let (Some(transcript), Some(analysis)) = (call.transcript.clone(), call.analysis.clone())
        else {
            return Ok(());
        };
        let check = TenantTxn::begin(&ctx.db, tenant, job.trace_id.clone()).await?;
        let exists = has_draft(&check, &call, CHANNEL).await?;
        check.finish_read().await?;
        if exists {
            return Ok(());
        }
        let analysis: CallAnalysis =
            serde_json::from_value(analysis).map_err(|e| JobError::Permanent(e.into()))?;
        let draft = uwc
            .draft_followup(&FollowupRequest {
                company_id: tenant.to_string(),
                call_id: call.id.to_string(),
                transcript,
                analysis,
                channel: CHANNEL.to_owned(),
            })
            .await
            .map_err(super::uwc_failure)?;
        let utx = TenantTxn::begin(&ctx.db, tenant, job.trace_id.clone()).await?;
        match store_draft(&utx, &call, CHANNEL, draft.body).await? {
            Some(_) => utx.commit(ctx).await?,
            None => utx.rollback().await?,
        }
        Ok(())
    }
}
