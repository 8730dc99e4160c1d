//! `callrail.enrich` (SPEC section 17): a completed CallRail call whose webhook lacked the
//! recording or the duration is completed from CallRail's API; a recording found there starts
//! the transcription. An answered call whose recording CallRail does not have yet is retried
//! (recordings arrive after the call), with the job's backoff.

use async_trait::async_trait;
use otto_db::TenantTxn;
use otto_domain::jobs::{EnrichCallRailCall, TranscribeCall};
use otto_integrations::callrail::{CallRailClient, CallRailSettings};
use otto_runtime::AppContext;
use otto_service::calls::{CallFacts, load_call, upsert_call};

use crate::JobError;
use crate::typed::Perform;

/// The client of `config`: `None` without `CALLRAIL_API_KEY` and `CALLRAIL_ACCOUNT_ID`.
pub fn client(config: &otto_runtime::Config) -> Option<CallRailClient> {
    CallRailClient::new(CallRailSettings::from_config(config)?).ok()
}

#[async_trait]
impl Perform for EnrichCallRailCall {
    type State = Option<CallRailClient>;

    async fn perform(
        self,
        client: &Option<CallRailClient>,
        ctx: &AppContext,
    ) -> Result<(), JobError> {
        let Some(client) = client else {
            tracing::info!(call_id = %self.call_id, "CallRail API not configured; call left as delivered");
            return Ok(());
        };
        let Some(call) = load_call(&ctx.db, &self.tenant_id, self.call_id).await? else {
            return Ok(());
        };
        if call.provider != "callrail"
            || (call.recording_url.is_some() && call.duration_seconds.is_some())
        {
            return Ok(());
        }
        let found = client.call(&call.provider_call_id).await.map_err(|err| {
            if err.is_permanent() {
                JobError::Permanent(err.into())
            } else {
                JobError::Retryable(err.into())
            }
        })?;
        let utx = TenantTxn::begin(&ctx.db, &self.tenant_id, self.trace_id.clone()).await?;
        let filled = upsert_call(
            &utx,
            CallFacts {
                provider: "callrail",
                provider_call_id: call.provider_call_id.clone(),
                answered: found.answered,
                duration_seconds: found.duration,
                recording_url: found.recording.clone(),
                status: call.status.clone(),
                ..CallFacts::default()
            },
        )
        .await?;
        let recorded_now = call.recording_url.is_none() && filled.recording_url.is_some();
        if recorded_now {
            utx.enqueue(&TranscribeCall {
                tenant_id: self.tenant_id.clone(),
                call_id: self.call_id,
                trace_id: self.trace_id.clone(),
            })?;
        }
        utx.commit(ctx)
            .await
            .map_err(|e| JobError::Retryable(e.into()))?;
        tracing::info!(call_id = %call.id, recorded_now, duration = ?filled.duration_seconds, "call enriched from CallRail");
        if filled.recording_url.is_none() && found.answered == Some(true) {
            return Err(JobError::Retryable(anyhow::anyhow!(
                "CallRail has no recording for this call yet"
            )));
        }
        Ok(())
    }
}
