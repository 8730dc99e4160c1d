//! `documents.index` (`otto_service::documents::index`, when UWC RAG is on) and
//! `training.submit` (`otto_service::training::submit`, when UWC training is on).

use std::sync::Arc;

use async_trait::async_trait;
use otto_domain::jobs::{IndexDocument, TrainRep};
use otto_integrations::uwc::UwcClient;
use otto_runtime::AppContext;
pub use otto_service::ask::rag_client;
use otto_service::documents::{DocumentError, index};
pub use otto_service::training::training_client;
use otto_service::training::{TrainingError, submit};

use crate::JobError;
use crate::typed::Perform;

#[async_trait]
impl Perform for IndexDocument {
    type State = Option<Arc<UwcClient>>;

    async fn perform(self, uwc: &Option<Arc<UwcClient>>, ctx: &AppContext) -> Result<(), JobError> {
        let Some(uwc) = uwc else {
            tracing::info!(document_id = %self.document_id, "UWC RAG is off; document left unindexed");
            return Ok(());
        };
        index(ctx, uwc, &self).await.map_err(|err| match err {
            DocumentError::Uwc(uwc) => super::pipeline::uwc_failure(uwc),
            DocumentError::NotFound => {
                JobError::Permanent(anyhow::anyhow!("document has no stored object"))
            }
            other => JobError::Retryable(other.into()),
        })
    }
}

#[async_trait]
impl Perform for TrainRep {
    type State = Option<Arc<UwcClient>>;

    async fn perform(self, uwc: &Option<Arc<UwcClient>>, ctx: &AppContext) -> Result<(), JobError> {
        let Some(uwc) = uwc else {
            return Err(JobError::Permanent(anyhow::anyhow!(
                "UWC training is off (ENABLE_UWC_TRAINING) or UWC is not configured"
            )));
        };
        submit(ctx, uwc, &self).await.map_err(|err| match err {
            TrainingError::Uwc(uwc) => super::pipeline::uwc_failure(uwc),
            other => JobError::Retryable(other.into()),
        })
    }
}
