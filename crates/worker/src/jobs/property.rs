//! `leads.property_intel`: `otto_service::property`.

use async_trait::async_trait;
use otto_domain::jobs::LookUpProperty;
use otto_integrations::llm::{LlmClient, LlmSettings};
use otto_runtime::AppContext;
use otto_service::property::{PropertyError, look_up};

use crate::JobError;
use crate::typed::Perform;

/// The model of `config`: `None` without `LLM_BASE_URL`.
pub fn model(config: &otto_runtime::Config) -> Option<LlmClient> {
    LlmClient::new(LlmSettings::from_config(config)?).ok()
}

#[async_trait]
impl Perform for LookUpProperty {
    type State = Option<LlmClient>;

    async fn perform(self, model: &Option<LlmClient>, ctx: &AppContext) -> Result<(), JobError> {
        let Some(model) = model else {
            return Err(JobError::Permanent(anyhow::anyhow!(
                "no model configured (LLM_BASE_URL)"
            )));
        };
        let status = look_up(ctx, model, &self).await.map_err(|err| match err {
            PropertyError::Llm(llm) => JobError::Retryable(llm.into()),
            PropertyError::Service(service) => JobError::Retryable(service.into()),
        })?;
        tracing::info!(lead_id = %self.lead_id, ?status, "property facts looked up");
        Ok(())
    }
}
