//! `missed-calls.process` (every minute, once per slot): `otto_service::missed_calls`.

use async_trait::async_trait;
use chrono::Utc;
use otto_domain::jobs::ProcessMissedCalls;
use otto_integrations::bland::{BlandClient, BlandSettings};
use otto_runtime::AppContext;
use otto_service::missed_calls::{Callbacks, process};

use crate::JobError;
use crate::typed::Perform;

/// Bland of `config`: `None` without `BLAND_API_KEY` (missed calls then get tasks only).
pub fn callbacks(config: &otto_runtime::Config) -> Option<Callbacks> {
    let bland = BlandClient::new(BlandSettings::from_config(config)?).ok()?;
    let webhook_url = config
        .http
        .public_base_url
        .as_ref()
        .map(|base| format!("{}/webhooks/bland", base.trim_end_matches('/')));
    Some(Callbacks { bland, webhook_url })
}

#[async_trait]
impl Perform for ProcessMissedCalls {
    type State = Option<Callbacks>;

    async fn perform(
        self,
        callbacks: &Option<Callbacks>,
        ctx: &AppContext,
    ) -> Result<(), JobError> {
        let done = process(ctx, callbacks.as_ref(), Utc::now())
            .await
            .map_err(|e| JobError::Retryable(e.into()))?;
        tracing::info!(
            tasks = done.tasks,
            dialed = done.dialed,
            "missed calls processed"
        );
        Ok(())
    }
}
