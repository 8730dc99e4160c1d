//! The path every delivery takes once its signature is verified: lockdown check, then one
//! transaction that claims the idempotency key, applies the provider's domain effects and
//! records the events; a duplicate only touches its key; a failure rolls everything back and
//! leaves the key free for the provider's retry.

use std::cell::RefCell;

use actix_web::HttpResponse;
use async_trait::async_trait;
use otto_db::idempotency;
use otto_domain::{EventEnvelope, TenantId, TraceId};
use otto_runtime::jobs::{NewJob, PendingJobs};
use sea_orm::{DatabaseTransaction, TransactionTrait};
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

/// What the effects of one delivery may use.
pub struct DeliveryContext<'a> {
    pub state: &'a ApiState,
    pub tenant: TenantId,
    pub trace: TraceId,
    pub provider: Provider,
    pub external_id: &'a str,
    /// Events of this delivery, written to the outbox in one statement before commit.
    events: RefCell<Vec<EventEnvelope>>,
    /// Jobs of this delivery, enqueued only if it commits.
    jobs: RefCell<PendingJobs>,
    /// Run once the delivery has committed (counters of what it did).
    after_commit: RefCell<Vec<Box<dyn FnOnce()>>>,
}

impl DeliveryContext<'_> {
    /// Adds `envelope` to the events the delivery's transaction records.
    pub fn emit(&self, envelope: EventEnvelope) {
        self.events.borrow_mut().push(envelope);
    }

    /// Adds `job` to the jobs enqueued if the delivery commits.
    pub fn enqueue(&self, job: NewJob) {
        self.jobs.borrow_mut().add(job);
    }

    /// Runs `action` if and only if the delivery commits.
    pub fn after_commit(&self, action: impl FnOnce() + 'static) {
        self.after_commit.borrow_mut().push(Box::new(action));
    }

    pub fn enqueue_all(&self, jobs: PendingJobs) {
        self.jobs.borrow_mut().append(jobs);
    }

    pub fn event(&self, name: &str, data: Value) -> EventEnvelope {
        EventEnvelope::new(name, self.tenant.clone(), self.trace.clone(), data)
    }
}

/// A provider's domain writes for one delivery, applied inside the delivery's transaction.
#[async_trait(?Send)]
pub trait Effects {
    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        ctx: &DeliveryContext<'_>,
    ) -> Result<(), ApiError>;
}

/// Processes one verified delivery exactly once.
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
    let txn = state.ctx.db.begin().await?;
    if !idempotency::claim(&txn, provider.as_str(), external_id, Some(tenant.as_str())).await? {
        txn.rollback().await?;
        idempotency::touch(&state.ctx.db, provider.as_str(), external_id).await?;
        metrics::counter!("webhook_duplicates_total", &labels).increment(1);
        log_delivery(provider, external_id, Some(&tenant), Outcome::Duplicate);
        return Ok(Outcome::Duplicate);
    }
    let ctx = DeliveryContext {
        state,
        tenant: tenant.clone(),
        trace,
        provider,
        external_id,
        events: RefCell::new(Vec::new()),
        jobs: RefCell::new(PendingJobs::default()),
        after_commit: RefCell::new(Vec::new()),
    };
    let queue = state.ctx.queue.as_ref();
    let applied = async {
        effects.apply(&txn, &ctx).await?;
        let processed = ctx.event(
            "system.webhook.processed",
            json!({ "provider": provider.as_str(), "external_id": external_id }),
        );
        ctx.emit(processed);
        let events = ctx.events.take();
        otto_db::outbox::record_all(&txn, &events).await?;
        let mut jobs = ctx.jobs.take();
        jobs.stage(queue, &txn)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok::<_, ApiError>(jobs)
    }
    .await;
    let jobs = match applied {
        Ok(jobs) => jobs,
        Err(err) => {
            // Dropping the transaction rolls back the key with the partial writes.
            drop(txn);
            metrics::counter!("webhook_failures_total", &labels).increment(1);
            tracing::warn!(provider = provider.as_str(), external_id, tenant_id = %tenant, status = "failed", error = %err, "webhook delivery failed");
            return Err(err);
        }
    };
    txn.commit().await?;
    state.ctx.outbox.notify();
    jobs.release(queue).await;
    for action in ctx.after_commit.take() {
        action();
    }
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
