//! Property intelligence (SPEC section 17): a lead with an address gets the model's estimate of
//! `{"property_type","year_built","roof_type","square_feet","estimated_value","confidence"}`,
//! asked with a strict JSON schema response format and validated again here. An answer that
//! does not validate is asked again, up to three times, then the lead is marked `failed`. A valid
//! one is stored on the lead (`property`, `property_status: ready`) and emitted as
//! `lead.updated`. It never blocks the lead's creation: it runs as a job after it.

use chrono::{Datelike, Utc};
use otto_db::TenantTxn;
use otto_db::entities::lead;
use otto_domain::catalog::LEAD_UPDATED;
use otto_domain::jobs::LookUpProperty;
use otto_integrations::llm::{ChatMessage, LlmClient, LlmError};
use otto_runtime::AppContext;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ExprTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::ServiceError;

/// Answers asked for before the lead is marked failed.
pub const ATTEMPTS: usize = 3;
pub const PENDING: &str = "pending";
pub const READY: &str = "ready";
pub const FAILED: &str = "failed";
const PROPERTY_TYPES: [&str; 7] = [
    "single_family",
    "townhouse",
    "condo",
    "multi_family",
    "mobile_home",
    "commercial",
    "unknown",
];

/// The facts, as stored on the lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyFacts {
    pub property_type: String,
    pub year_built: Option<i32>,
    pub roof_type: Option<String>,
    pub square_feet: Option<i32>,
    pub estimated_value: Option<f64>,
    pub confidence: f64,
}

/// The JSON schema the model must answer with.
pub fn schema() -> Value {
    json!({
        "type": "object", "additionalProperties": false,
        "required": ["property_type", "year_built", "roof_type", "square_feet", "estimated_value", "confidence"],
        "properties": {
            "property_type": {"type": "string", "enum": PROPERTY_TYPES},
            "year_built": {"type": ["integer", "null"]},
            "roof_type": {"type": ["string", "null"]},
            "square_feet": {"type": ["integer", "null"]},
            "estimated_value": {"type": ["number", "null"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1}
        }
    })
}

/// Parses and checks an answer; why it is refused otherwise.
pub fn validate(content: &str) -> Result<PropertyFacts, String> {
    let facts: PropertyFacts = serde_json::from_str(content).map_err(|e| e.to_string())?;
    if !PROPERTY_TYPES.contains(&facts.property_type.as_str()) {
        return Err(format!(
            "property_type {:?} is not one of the enum",
            facts.property_type
        ));
    }
    if facts
        .year_built
        .is_some_and(|y| !(1600..=Utc::now().year() + 1).contains(&y))
    {
        return Err("year_built out of range".to_owned());
    }
    if facts
        .square_feet
        .is_some_and(|f| !(50..=200_000).contains(&f))
    {
        return Err("square_feet out of range".to_owned());
    }
    if facts
        .estimated_value
        .is_some_and(|v| !(0.0..=1e10).contains(&v))
    {
        return Err("estimated_value out of range".to_owned());
    }
    if !(0.0..=1.0).contains(&facts.confidence) {
        return Err("confidence must be 0-1".to_owned());
    }
    Ok(facts)
}

/// Marks the lead's property facts pending and queues their look-up (in `utx`).
///
/// # Errors
/// On database failure.
pub async fn request(utx: &TenantTxn, lead_id: Uuid) -> Result<(), ServiceError> {
    utx.scope()
        .update_many::<lead::Entity>()
        .filter(lead::Column::Id.eq(lead_id))
        .col_expr(lead::Column::PropertyStatus, Expr::value(PENDING))
        .exec(utx.conn())
        .await?;
    utx.enqueue(&LookUpProperty {
        tenant_id: utx.tenant().clone(),
        lead_id,
        trace_id: utx.trace().clone(),
    })?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum PropertyError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// The `leads.property_intel` job: asks, validates, stores. Returns the status written (none
/// when the lead or its address is gone).
///
/// # Errors
/// The model unreachable (the job retries), database failures.
pub async fn look_up(
    ctx: &AppContext,
    client: &LlmClient,
    job: &LookUpProperty,
) -> Result<Option<&'static str>, PropertyError> {
    let utx = TenantTxn::begin(&ctx.db, &job.tenant_id, job.trace_id.clone())
        .await
        .map_err(ServiceError::from)?;
    let row = utx
        .scope()
        .find_by_id::<lead::Entity, _>(job.lead_id)
        .await
        .map_err(ServiceError::from)?;
    utx.finish_read().await.map_err(ServiceError::from)?;
    let Some(address) = row.and_then(|l| l.address).filter(|a| !a.trim().is_empty()) else {
        return Ok(None);
    };
    let messages = [
        ChatMessage::text(
            "system",
            "You estimate facts about a property for a home-services sales rep from its address. \
             Answer only with the JSON object of the schema; use null for what you cannot \
             estimate, and a confidence from 0 to 1.",
        ),
        ChatMessage::text("user", format!("Address: {address}")),
    ];
    let schema = schema();
    let mut facts = None;
    for attempt in 1..=ATTEMPTS {
        let answer = client
            .chat_json(&messages, "property_facts", &schema)
            .await?;
        metrics::counter!("llm_tokens_total", "tenant_id" => job.tenant_id.to_string(), "model" => answer.model.clone())
            .increment(answer.usage.total_tokens);
        match validate(answer.message.content.as_deref().unwrap_or_default()) {
            Ok(valid) => {
                facts = Some(valid);
                break;
            }
            Err(why) => {
                tracing::warn!(lead_id = %job.lead_id, attempt, why, "the model's property answer does not validate");
                metrics::counter!("property_intel_invalid_answers_total").increment(1);
            }
        }
    }
    let status = store(ctx, job, facts.as_ref()).await?;
    Ok(Some(status))
}

async fn store(
    ctx: &AppContext,
    job: &LookUpProperty,
    facts: Option<&PropertyFacts>,
) -> Result<&'static str, ServiceError> {
    let utx = TenantTxn::begin(&ctx.db, &job.tenant_id, job.trace_id.clone()).await?;
    let (status, value) = match facts {
        Some(facts) => (READY, Some(serde_json::to_value(facts)?)),
        None => (FAILED, None),
    };
    utx.scope()
        .update_many::<lead::Entity>()
        .filter(lead::Column::Id.eq(job.lead_id))
        .col_expr(lead::Column::Property, Expr::value(value))
        .col_expr(lead::Column::PropertyStatus, Expr::value(status))
        .col_expr(
            lead::Column::Version,
            Expr::col(lead::Column::Version).add(1),
        )
        .col_expr(lead::Column::UpdatedAt, Expr::value(Utc::now()))
        .exec(utx.conn())
        .await?;
    let version = utx
        .scope()
        .find_by_id::<lead::Entity, _>(job.lead_id)
        .await?
        .map(|l| l.version);
    utx.emit(
        utx.event(
            LEAD_UPDATED,
            json!({ "lead_id": job.lead_id, "change": "property", "status": status, "version": version }),
        )
        .with_lead(job.lead_id),
    );
    utx.commit(ctx).await?;
    metrics::counter!("property_intel_total", "result" => status).increment(1);
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_against_the_schema() {
        let valid = r#"{"property_type":"single_family","year_built":1987,"roof_type":"asphalt shingle","square_feet":2100,"estimated_value":385000,"confidence":0.6}"#;
        assert!(validate(valid).is_ok());
        for invalid in [
            r#"{"property_type":"castle","year_built":1987,"roof_type":null,"square_feet":2100,"estimated_value":1,"confidence":0.6}"#,
            r#"{"property_type":"condo","year_built":"old","roof_type":null,"square_feet":null,"estimated_value":null,"confidence":0.5}"#,
            r#"{"property_type":"condo","year_built":null,"roof_type":null,"square_feet":null,"estimated_value":null,"confidence":5}"#,
            r#"{"property_type":"condo","year_built":null,"roof_type":null,"square_feet":null,"estimated_value":null,"confidence":0.5,"extra":1}"#,
            "not json",
        ] {
            assert!(validate(invalid).is_err(), "{invalid}");
        }
    }
}
