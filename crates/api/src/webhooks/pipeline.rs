//! The path every delivery takes once its signature is verified: lockdown check, then one
//! transaction that claims the idempotency key, applies the provider's domain effects and
//! records the events; a duplicate only touches its key; a failure rolls everything back and
//! leaves the key free for the provider's retry.

use actix_web::HttpResponse;
use async_trait::async_trait;
use otto_db::{TenantTxn, idempotency};
use otto_domain::catalog::SYSTEM_WEBHOOK_PROCESSED;
use otto_domain::{EventEnvelope, TenantId, TraceId};
use serde_json::{Value, json};

use super::tenants::Tenant;
use crate::auth::lockdown::ensure_unlocked;
use crate::error::ApiError;
use crate::request_context::RequestContext;
use crate::state::ApiState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    CallRail,
    Twilio,
    Clerk,
    Bland,
    Uwc,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::CallRail => "callrail",
            Provider::Twilio => "twilio",
            Provider::Clerk => "clerk",
            Provider::Bland => "bland",
            Provider::Uwc => "uwc",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Duplicate,
    UnknownTenant,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Duplicate => "duplicate_ignored",
            Outcome::UnknownTenant => "ignored_unknown_tenant",
        }
    }

    /// The JSON answer every provider but Twilio voice/SMS gets.
    pub fn json(self, provider: Provider) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "status": self.as_str(), "provider": provider.as_str() }))
    }
}

/// What the effects of one delivery may use: the delivery's unit of work (acting for its tenant
/// under row-level security), and which delivery it is.
pub struct DeliveryContext<'a> {
    pub state: &'a ApiState,
    pub utx: &'a TenantTxn,
    pub tenant: &'a TenantId,
    pub provider: Provider,
    pub external_id: &'a str,
}

impl DeliveryContext<'_> {
    /// Adds `envelope` to the events the delivery's transaction records.
    pub fn emit(&self, envelope: EventEnvelope) {
        self.utx.emit(envelope);
    }

    pub fn event(&self, name: &str, data: Value) -> EventEnvelope {
        self.utx.event(name, data)
    }
}

/// A provider's domain writes for one delivery, applied inside the delivery's unit of work.
#[async_trait(?Send)]
pub trait Effects {
    async fn apply(&self, ctx: &DeliveryContext<'_>) -> Result<(), ApiError>;

    /// The caller (E.164) whose lead and calls this delivery writes, when it is about one: a
    /// tenant's deliveries about different callers are group-committed in parallel lanes.
    fn caller(&self) -> Option<String> {
        None
    }
}

/// Processes one verified delivery exactly once: the tenant is resolved (outside RLS, by the
/// caller), then one tenant unit of work claims the idempotency key, applies the effects and
/// records the events and jobs.
///
/// # Errors
/// 423 for a tenant in lockdown; the effects' error (the transaction is rolled back and the key
/// released); database failures.
pub async fn deliver(
    state: &ApiState,
    provider: Provider,
    external_id: &str,
    tenant: Option<Tenant>,
    effects: &dyn Effects,
) -> Result<Outcome, ApiError> {
    let Some(Tenant { id: tenant, locked }) = tenant else {
        log_delivery(provider, external_id, None, Outcome::UnknownTenant);
        return Ok(Outcome::UnknownTenant);
    };
    match locked {
        Some(true) => return Err(ApiError::Locked),
        Some(false) => {}
        None => ensure_unlocked(&state.ctx.db, &tenant).await?,
    }
    let trace = RequestContext::current()
        .map(|c| c.trace_id)
        .unwrap_or_else(TraceId::generate);
    let labels = [
        ("provider", provider.as_str().to_owned()),
        ("tenant_id", tenant.to_string()),
    ];
    let utx = match &state.ctx.delivery_batches {
        Some(batches) => {
            TenantTxn::join_batch(batches, &tenant, effects.caller().as_deref(), trace)?
        }
        None => TenantTxn::begin(&state.ctx.db, &tenant, trace).await?,
    };
    if !idempotency::claim(
        utx.conn(),
        provider.as_str(),
        external_id,
        Some(tenant.as_str()),
    )
    .await?
    {
        // Counted in the same unit of work, so a key still being committed by another member
        // of a batch is counted once that batch commits.
        idempotency::touch(utx.conn(), provider.as_str(), external_id).await?;
        utx.commit(&state.ctx).await?;
        metrics::counter!("webhook_duplicates_total", &labels).increment(1);
        log_delivery(provider, external_id, Some(&tenant), Outcome::Duplicate);
        return Ok(Outcome::Duplicate);
    }
    let ctx = DeliveryContext {
        state,
        utx: &utx,
        tenant: &tenant,
        provider,
        external_id,
    };
    if let Err(err) = effects.apply(&ctx).await {
        // Rolls back the key with the partial writes (only this delivery's, in a batch).
        if let Err(rollback) = utx.rollback().await {
            tracing::warn!(error = %rollback, "rolling back a failed delivery failed");
        }
        metrics::counter!("webhook_failures_total", &labels).increment(1);
        tracing::warn!(provider = provider.as_str(), external_id, tenant_id = %tenant, status = "failed", error = %err, "webhook delivery failed");
        return Err(err);
    }
    utx.emit(utx.event(
        SYSTEM_WEBHOOK_PROCESSED,
        json!({ "provider": provider.as_str(), "external_id": external_id }),
    ));
    utx.commit(&state.ctx).await?;
    metrics::counter!("webhook_processed_total", &labels).increment(1);
    log_delivery(provider, external_id, Some(&tenant), Outcome::Processed);
    Ok(Outcome::Processed)
}

fn log_delivery(
    provider: Provider,
    external_id: &str,
    tenant: Option<&TenantId>,
    outcome: Outcome,
) {
    tracing::info!(
        provider = provider.as_str(),
        external_id,
        tenant_id = tenant.map(|t| t.as_str()),
        status = outcome.as_str(),
        "webhook delivery"
    );
}
