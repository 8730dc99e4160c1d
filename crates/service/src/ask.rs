//! Ask Otto (SPEC section 14): a question answered by UWC's RAG over the company's calls and
//! documents. Every citation UWC returns is mapped back to an Otto record of the asking tenant
//! (a document, else a call); one that names nothing of this tenant is dropped, never shown.
//! Without RAG (`ENABLE_UWC_RAG`) or with UWC failing there is no answer: the caller gets an
//! error, never a made-up reply.

use otto_db::TenantTxn;
use otto_db::entities::{call, document};
use std::sync::Arc;

use otto_integrations::uwc::{RagQuery, RagSource, UwcClient, UwcError, UwcSettings};
use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::ServiceError;

const MAX_QUESTION: usize = 2000;
const TOP_K: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("Ask Otto is not available (UWC RAG is not configured or is switched off)")]
    Disabled,
    #[error("UWC could not answer: {0}")]
    Uwc(#[from] UwcError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<sea_orm::DbErr> for AskError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Service(err.into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CitationKind {
    Document,
    Call,
}

impl CitationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Document => "document",
            Self::Call => "call",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation {
    pub kind: CitationKind,
    pub id: Uuid,
    pub snippet: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub answer: String,
    pub citations: Vec<Citation>,
}

/// The UWC client of `config` when RAG is configured and on (`ENABLE_UWC_RAG`): what answers
/// questions and indexes documents.
pub fn rag_client(config: &otto_runtime::Config) -> Option<Arc<UwcClient>> {
    if !config.integrations.uwc.enabled().rag {
        return None;
    }
    UwcClient::new(UwcSettings::from_config(config)?)
        .ok()
        .map(Arc::new)
}

/// A question, checked.
pub fn checked_question(question: &str) -> Result<String, ServiceError> {
    let question = question.trim();
    if question.is_empty() || question.chars().count() > MAX_QUESTION {
        return Err(ServiceError::invalid(
            "question",
            format!("must be 1-{MAX_QUESTION} characters"),
        ));
    }
    Ok(question.to_owned())
}

/// Asks UWC and maps its sources to the tenant's records. `utx` is a read of the asking tenant
/// (the lead check and the citation lookups); `uwc` is `None` when RAG is off.
///
/// # Errors
/// `Disabled`, `Uwc` (down, refusing), `Service` (an unknown lead, database failures).
pub async fn ask(
    utx: &TenantTxn,
    uwc: Option<&UwcClient>,
    question: &str,
    lead_id: Option<Uuid>,
) -> Result<Answer, AskError> {
    let question = checked_question(question)?;
    if let Some(lead) = lead_id {
        crate::calls::require_lead(utx, lead).await?;
    }
    let uwc = uwc.ok_or(AskError::Disabled)?;
    let reply = uwc
        .query_rag(&RagQuery {
            company_id: utx.tenant().to_string(),
            question,
            top_k: Some(TOP_K),
            lead_id: lead_id.map(|id| id.to_string()),
        })
        .await?;
    if let Some(usage) = &reply.usage {
        metrics::counter!("llm_tokens_total", "tenant_id" => utx.tenant().to_string(), "model" => "uwc-rag")
            .increment(usage.prompt_tokens + usage.completion_tokens);
    }
    let citations = cite(utx, &reply.sources).await?;
    Ok(Answer {
        answer: reply.answer,
        citations,
    })
}

/// The sources that name a document or a call of the tenant, in UWC's order, once each.
async fn cite(utx: &TenantTxn, sources: &[RagSource]) -> Result<Vec<Citation>, AskError> {
    let ids: Vec<Uuid> = sources
        .iter()
        .filter_map(|s| Uuid::parse_str(&s.document_id).ok())
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let documents: Vec<Uuid> = utx
        .scope()
        .select::<document::Entity>()
        .select_only()
        .column(document::Column::Id)
        .filter(document::Column::Id.is_in(ids.clone()))
        .into_tuple()
        .all(utx.conn())
        .await?;
    let calls: Vec<Uuid> = utx
        .scope()
        .select::<call::Entity>()
        .select_only()
        .column(call::Column::Id)
        .filter(call::Column::Id.is_in(ids))
        .into_tuple()
        .all(utx.conn())
        .await?;
    let mut citations: Vec<Citation> = Vec::new();
    for source in sources {
        let Ok(id) = Uuid::parse_str(&source.document_id) else {
            continue;
        };
        let kind = if documents.contains(&id) {
            CitationKind::Document
        } else if calls.contains(&id) {
            CitationKind::Call
        } else {
            tracing::warn!(source = %source.document_id, "UWC cited a record this tenant does not have; dropped");
            continue;
        };
        if citations.iter().any(|c| c.id == id) {
            continue;
        }
        citations.push(Citation {
            kind,
            id,
            snippet: source.snippet.clone(),
        });
    }
    Ok(citations)
}
