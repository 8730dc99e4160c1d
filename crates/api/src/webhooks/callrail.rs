//! CallRail: `POST /webhooks/callrail/{pre-call,call-complete,call-modified}` (JSON).

use actix_web::{HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use otto_domain::PhoneE164;
use otto_domain::catalog::{
    TELEPHONY_CALL_COMPLETED, TELEPHONY_CALL_RECEIVED, TELEPHONY_CALL_STATUS,
};
use otto_domain::jobs::EnrichCallRailCall;
use serde_json::{Value, json};

use super::pipeline::{DeliveryContext, Effects, Provider, deliver};
use super::{json_body, signature, tenants, text_of};
use crate::error::ApiError;
use crate::state::ApiState;
use otto_service::calls::{CallFacts, lead_by_phone, upsert_call};

const EVENTS: [&str; 3] = ["pre-call", "call-complete", "call-modified"];

/// The canonical event of a path segment: seed 003's dotted names are aliases.
fn canonical(event: &str) -> &str {
    match event {
        "call.incoming" => "pre-call",
        "call.completed" => "call-complete",
        "call.modified" => "call-modified",
        other => other,
    }
}

struct CallRailCall {
    event: String,
    body: Value,
    call_id: String,
}

pub async fn receive(
    state: web::Data<ApiState>,
    req: HttpRequest,
    event: String,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let event = canonical(&event).to_owned();
    if !EVENTS.contains(&event.as_str()) {
        return Err(ApiError::NotFound);
    }
    if let Some(secret) = &state.ctx.config.webhooks.callrail {
        let header = req.headers().get("signature").and_then(|v| v.to_str().ok());
        signature::callrail(secret.expose(), header, &raw).map_err(super::refused)?;
    }
    let body = json_body(&raw)?;
    let call = body.get("call").unwrap_or(&Value::Null);
    let call_id = ["id"]
        .iter()
        .find_map(|k| text_of(call.get(*k)))
        .or_else(|| {
            ["call_id", "resource_id", "id"]
                .iter()
                .find_map(|k| text_of(body.get(*k)))
        })
        .ok_or_else(|| {
            ApiError::validation(
                "call_id",
                "the delivery names no call (call.id, call_id, resource_id or id)",
            )
        })?;
    let company = text_of(body.get("company_id"))
        .ok_or_else(|| ApiError::validation("company_id", "is required"))?;
    // A retry repeats the body; a new modification of the same call does not.
    let external_id = match event.as_str() {
        "call-modified" => format!("{event}:{call_id}:{}", signature::sha256_hex(&raw)),
        _ => format!("{event}:{call_id}"),
    };
    let tenant = tenants::by_callrail_company(&state.ctx.db, &company).await?;
    let delivery = CallRailCall {
        event,
        body,
        call_id,
    };
    let outcome = deliver(&state, Provider::CallRail, &external_id, tenant, &delivery).await?;
    Ok(outcome.json(Provider::CallRail))
}

impl CallRailCall {
    fn field(&self, name: &str) -> Option<&Value> {
        self.body
            .get(name)
            .or_else(|| self.body.get("call").and_then(|c| c.get(name)))
    }

    fn customer_phone(&self) -> Option<PhoneE164> {
        text_of(self.field("customer_phone_number"))
            .and_then(|p| PhoneE164::try_from(p.as_str()).ok())
    }
}

#[async_trait(?Send)]
impl Effects for CallRailCall {
    fn caller(&self) -> Option<String> {
        self.customer_phone().map(|phone| phone.to_string())
    }

    async fn apply(&self, ctx: &DeliveryContext<'_>) -> Result<(), ApiError> {
        let field = |name: &str| self.field(name);
        let phone = self.customer_phone();
        let name = text_of(field("customer_name"));
        let lead_id = match &phone {
            Some(phone) => Some(lead_by_phone(ctx.utx, phone, name.as_deref(), "callrail").await?),
            None => None,
        };
        let recording = text_of(field("recording")).filter(|r| r.starts_with("http"));
        let facts = CallFacts {
            provider: "callrail",
            provider_call_id: self.call_id.clone(),
            lead_id,
            direction: text_of(field("direction")),
            answered: field("answered").and_then(Value::as_bool),
            duration_seconds: text_of(field("duration")).and_then(|d| d.parse().ok()),
            recording_url: recording.clone(),
            recording_key: None,
            status: match self.event.as_str() {
                "pre-call" => "in_progress",
                "call-complete" => "completed",
                _ => "modified",
            }
            .to_owned(),
            started_at: text_of(field("start_time"))
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.to_utc()),
        };
        let call = upsert_call(ctx.utx, facts).await?;
        let name = match self.event.as_str() {
            "pre-call" => TELEPHONY_CALL_RECEIVED,
            "call-complete" => TELEPHONY_CALL_COMPLETED,
            _ => TELEPHONY_CALL_STATUS,
        };
        let mut envelope = ctx.event(
            name,
            json!({ "call_id": call.id, "provider": "callrail", "status": call.status }),
        );
        if let Some(lead) = lead_id {
            envelope = envelope.with_lead(lead);
        }
        ctx.emit(envelope);
        if recording.is_some() && self.event != "pre-call" {
            super::enqueue_transcription(ctx, call.id.into())?;
        }
        // A completed call the delivery left without recording or duration: ask CallRail's API.
        if self.event == "call-complete"
            && (call.recording_url.is_none() || call.duration_seconds.is_none())
        {
            ctx.utx.enqueue(&EnrichCallRailCall {
                tenant_id: ctx.tenant.clone(),
                call_id: call.id.into(),
                trace_id: ctx.utx.trace().clone(),
            })?;
        }
        Ok(())
    }
}
