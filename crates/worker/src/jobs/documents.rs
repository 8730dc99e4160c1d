//! `documents.index`: `otto_service::documents::index`, when UWC RAG is on.

use std::sync::Arc;

use async_trait::async_trait;
use otto_domain::jobs::IndexDocument;
use otto_integrations::uwc::UwcClient;
use otto_runtime::AppContext;
pub use otto_service::ask::rag_client;
use otto_service::documents::{DocumentError, index};

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
