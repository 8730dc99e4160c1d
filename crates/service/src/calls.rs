//! Calls and the leads they come from: a lead found or created by phone, and a call created or
//! updated by its provider id, both idempotent under concurrency. Telephony webhooks, the
//! pipeline and (later) the CRM share them.

use chrono::{DateTime, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{call, lead};
use otto_domain::catalog::{TELEPHONY_CALL_COMPLETED, TELEPHONY_CALL_STATUS};
use otto_domain::{CallId, EventEnvelope, LeadId, PhoneE164, TenantId, TraceId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use serde_json::{Value, json};
use uuid::Uuid;

/// The tenant's lead with `phone`, created (status `new`) if there is none yet.
///
/// # Errors
/// On database failure.
pub async fn lead_by_phone(
    utx: &TenantTxn,
    phone: &PhoneE164,
    name: Option<&str>,
    source: &str,
) -> Result<LeadId, DbErr> {
    let now = Utc::now();
    let row = lead::ActiveModel {
        id: Set(Uuid::now_v7()),
        company_id: Set(utx.tenant().to_string()),
        name: Set(name.map(str::to_owned)),
        phone: Set(Some(phone.to_string())),
        email: Set(None),
        source: Set(Some(source.to_owned())),
        status: Set("new".to_owned()),
        assigned_user_id: Set(None),
        sms_opted_out: Set(false),
        version: Set(1),
        address: Set(None),
        property: Set(None),
        property_status: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    // A no-op update on conflict makes the existing row come back in the same statement.
    let conflict = OnConflict::columns([lead::Column::CompanyId, lead::Column::Phone])
        .value(lead::Column::CompanyId, Expr::cust("leads.company_id"))
        .to_owned();
    let lead = lead::Entity::insert(row)
        .on_conflict(conflict)
        .exec_with_returning(utx.conn())
        .await?;
    Ok(LeadId::from(lead.id))
}

/// What a provider tells about a call; `None` fields keep the stored value.
#[derive(Debug, Default, Clone)]
pub struct CallFacts {
    pub provider: &'static str,
    pub provider_call_id: String,
    pub lead_id: Option<LeadId>,
    pub direction: Option<String>,
    pub answered: Option<bool>,
    pub duration_seconds: Option<i32>,
    pub recording_url: Option<String>,
    /// A recording in Otto's object storage (`{company}/recordings/{id}`).
    pub recording_key: Option<String>,
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
}

/// Creates the call or merges `facts` into it (one row per provider call id per tenant).
///
/// # Errors
/// On database failure.
pub async fn upsert_call(utx: &TenantTxn, facts: CallFacts) -> Result<call::Model, DbErr> {
    let now = Utc::now();
    let row = call::ActiveModel {
        id: Set(Uuid::now_v7()),
        company_id: Set(utx.tenant().to_string()),
        lead_id: Set(facts.lead_id.map(Uuid::from)),
        provider: Set(facts.provider.to_owned()),
        provider_call_id: Set(facts.provider_call_id.clone()),
        direction: Set(facts.direction),
        answered: Set(facts.answered),
        duration_seconds: Set(facts.duration_seconds),
        recording_url: Set(facts.recording_url),
        transcript: Set(None),
        analysis: Set(None),
        objections: Set(None),
        booked: Set(false),
        notes: Set(None),
        status: Set(facts.status),
        started_at: Set(facts.started_at),
        asr_provider: Set(None),
        callback_requested_at: Set(None),
        bland_call_id: Set(None),
        recording_key: Set(facts.recording_key),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let keep_known =
        |column: &str| Expr::cust(format!("COALESCE(excluded.{column}, calls.{column})"));
    let conflict = OnConflict::columns([
        call::Column::CompanyId,
        call::Column::Provider,
        call::Column::ProviderCallId,
    ])
    .value(call::Column::LeadId, keep_known("lead_id"))
    .value(call::Column::Direction, keep_known("direction"))
    .value(call::Column::Answered, keep_known("answered"))
    .value(
        call::Column::DurationSeconds,
        keep_known("duration_seconds"),
    )
    .value(call::Column::RecordingUrl, keep_known("recording_url"))
    .value(call::Column::RecordingKey, keep_known("recording_key"))
    .value(call::Column::StartedAt, keep_known("started_at"))
    .update_columns([call::Column::Status, call::Column::UpdatedAt])
    .to_owned();
    call::Entity::insert(row)
        .on_conflict(conflict)
        .exec_with_returning(utx.conn())
        .await
}

/// `telephony.call.completed` for a completed call, else `telephony.call.status`.
pub fn call_status_event(utx: &TenantTxn, call: &call::Model) -> EventEnvelope {
    let name = if call.status == "completed" {
        TELEPHONY_CALL_COMPLETED
    } else {
        TELEPHONY_CALL_STATUS
    };
    utx.event(
        name,
        json!({ "call_id": call.id, "provider": call.provider, "status": call.status }),
    )
}

/// The tenant's call `call_id`, read through the tenant filter.
///
/// # Errors
/// On database failure.
pub async fn load_call<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    call_id: CallId,
) -> Result<Option<call::Model>, DbErr> {
    otto_db::TenantScope::new(conn, tenant.clone())
        .find_by_id::<call::Entity, _>(Uuid::from(call_id))
        .await
}

/// An event about `call`, on its lead's timeline too.
pub fn call_event(
    name: &str,
    tenant: &TenantId,
    trace: &TraceId,
    call: &call::Model,
    data: Value,
) -> EventEnvelope {
    let envelope = EventEnvelope::new(name, tenant.clone(), trace.clone(), data);
    match call.lead_id {
        Some(lead) => envelope.with_lead(lead),
        None => envelope,
    }
}

/// `Invalid(lead_id)` unless `lead` is a lead of the unit of work's tenant.
///
/// # Errors
/// `Invalid`, database failures.
pub async fn require_lead(utx: &TenantTxn, lead: Uuid) -> Result<(), crate::ServiceError> {
    match utx.scope().find_by_id::<lead::Entity, _>(lead).await? {
        Some(_) => Ok(()),
        None => Err(crate::ServiceError::invalid(
            "lead_id",
            "is not a lead of the company",
        )),
    }
}
