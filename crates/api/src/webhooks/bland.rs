//! Bland (AI voice calls): `POST /webhooks/bland`, tenant named in `metadata.company_id`.

use actix_web::{HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use serde_json::Value;

use super::pipeline::{DeliveryContext, Effects, Provider, deliver};
use super::{json_body, signature, tenants, text_of};
use crate::error::ApiError;
use crate::state::ApiState;
use otto_service::calls::{CallFacts, call_status_event, upsert_call};

struct BlandCall {
    call_id: String,
    body: Value,
}

pub async fn receive(
    state: web::Data<ApiState>,
    req: HttpRequest,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    if let Some(secret) = &state.ctx.config.webhooks.bland {
        let header = req
            .headers()
            .get("x-webhook-signature")
            .and_then(|v| v.to_str().ok());
        signature::bland(secret.expose(), header, &raw).map_err(super::refused)?;
    }
    let body = json_body(&raw)?;
    let call_id = text_of(body.get("call_id"))
        .or_else(|| text_of(body.get("session_id")))
        .ok_or_else(|| {
            ApiError::validation("call_id", "the delivery names no call_id or session_id")
        })?;
    let tenant = match text_of(body.pointer("/metadata/company_id")) {
        Some(company) => tenants::known_company(&state.ctx.db, &company).await?,
        None => None,
    };
    let outcome = deliver(
        &state,
        Provider::Bland,
        &call_id.clone(),
        tenant,
        &BlandCall { call_id, body },
    )
    .await?;
    Ok(outcome.json(Provider::Bland))
}

#[async_trait(?Send)]
impl Effects for BlandCall {
    async fn apply(&self, ctx: &DeliveryContext<'_>) -> Result<(), ApiError> {
        let status = text_of(self.body.get("status")).unwrap_or_else(|| "completed".to_owned());
        let call = upsert_call(
            ctx.utx,
            CallFacts {
                provider: "bland",
                provider_call_id: self.call_id.clone(),
                direction: Some("outbound".to_owned()),
                answered: self
                    .body
                    .get("answered_by")
                    .map(|a| a.as_str() == Some("human")),
                duration_seconds: self
                    .body
                    .get("call_length")
                    .and_then(Value::as_f64)
                    .map(|minutes| (minutes * 60.0).round() as i32),
                recording_url: text_of(self.body.get("recording_url")),
                recording_key: None,
                status: status.clone(),
                ..CallFacts::default()
            },
        )
        .await?;
        ctx.emit(call_status_event(ctx.utx, &call));
        // A callback Otto placed for a missed call: its task is done, with the outcome.
        if let Some(missed) = text_of(self.body.pointer("/metadata/call_id"))
            .and_then(|id| uuid::Uuid::parse_str(&id).ok())
        {
            let summary = text_of(self.body.get("summary"));
            let outcome = match summary {
                Some(summary) => format!("callback {status}: {summary}"),
                None => format!("callback {status}"),
            };
            otto_service::missed_calls::close_callback(ctx.utx, missed, &outcome).await?;
        }
        Ok(())
    }
}
