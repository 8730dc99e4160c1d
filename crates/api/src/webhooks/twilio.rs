//! Twilio: `POST /webhooks/twilio/{voice,sms,recording,status}` (form bodies, signed with
//! `X-Twilio-Signature` over `PUBLIC_BASE_URL` + path). Voice and SMS answer TwiML.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use chrono::Utc;
use otto_db::entities::message;
use otto_domain::PhoneE164;
use otto_domain::catalog::{TELEPHONY_CALL_RECEIVED, TELEPHONY_SMS_RECEIVED};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::json;
use uuid::Uuid;

use super::pipeline::{DeliveryContext, Effects, Outcome, Provider, deliver};
use super::{assistant, signature, tenants};
use crate::error::ApiError;
use crate::state::ApiState;
use otto_service::calls::{CallFacts, call_status_event, lead_by_phone, upsert_call};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Voice,
    Sms,
    Recording,
    Status,
}

struct TwilioDelivery {
    kind: Kind,
    params: HashMap<String, String>,
}

pub async fn receive(
    state: web::Data<ApiState>,
    req: HttpRequest,
    kind: String,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let kind = match kind.as_str() {
        "voice" => Kind::Voice,
        "sms" => Kind::Sms,
        "recording" => Kind::Recording,
        "status" => Kind::Status,
        _ => return Err(ApiError::NotFound),
    };
    let pairs = verified_form(&state, &req, &raw)?;
    let params: HashMap<String, String> = pairs.into_iter().collect();
    let get = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    let required =
        |name: &'static str| get(name).ok_or_else(|| ApiError::validation(name, "is required"));
    let db = &state.ctx.db;
    let (external_id, tenant) = match kind {
        Kind::Voice => (
            required("CallSid")?,
            tenants::by_twilio_number(db, &normalise(&required("To")?)?).await?,
        ),
        Kind::Sms => (
            required("MessageSid")?,
            tenants::by_twilio_number(db, &normalise(&required("To")?)?).await?,
        ),
        Kind::Recording => {
            let call_sid = required("CallSid")?;
            // The call may not be known yet (its status callback still on the way): the
            // number called names the company too (SPEC section 12).
            let tenant = match tenants::by_twilio_call(db, &call_sid).await? {
                Some(tenant) => Some(tenant),
                None => match get("To") {
                    Some(to) => tenants::by_twilio_number(db, &normalise(&to)?).await?,
                    None => None,
                },
            };
            (required("RecordingSid")?, tenant)
        }
        // A message's status callback (outbound SMS): our number is `From`.
        Kind::Status if get("MessageSid").is_some() => {
            let sid = required("MessageSid")?;
            let status = required("MessageStatus")?;
            // Sent from a number of the company's, or from TWILIO_FROM_NUMBER: then the sid says.
            let tenant =
                match tenants::by_twilio_number(db, &normalise(&required("From")?)?).await? {
                    Some(tenant) => Some(tenant),
                    None => tenants::by_twilio_message(db, &sid).await?,
                };
            (format!("sms:{sid}:{status}"), tenant)
        }
        Kind::Status => {
            let call_sid = required("CallSid")?;
            let status = required("CallStatus")?;
            let tenant = match get("To") {
                Some(to) => tenants::by_twilio_number(db, &normalise(&to)?).await?,
                None => tenants::by_twilio_call(db, &call_sid).await?,
            };
            (format!("{call_sid}:{status}"), tenant)
        }
    };
    let tenant_id = tenant.as_ref().map(|t| t.id.clone());
    let caller = get("From").and_then(|p| PhoneE164::try_from(p.as_str()).ok());
    let body = get("Body").unwrap_or_default();
    let delivery = TwilioDelivery { kind, params };
    let outcome = deliver(&state, Provider::Twilio, &external_id, tenant, &delivery).await?;
    let empty = || {
        HttpResponse::Ok()
            .content_type("application/xml")
            .body(assistant::EMPTY_TWIML)
    };
    match (kind, tenant_id) {
        (Kind::Voice, Some(tenant)) => {
            assistant::answer_call(&state, &tenant, &external_id, caller.as_ref()).await
        }
        // A retried delivery was answered the first time; opt-out words are not conversation.
        (Kind::Sms, Some(tenant))
            if outcome == Outcome::Processed
                && otto_service::messages::consent_keyword(&body).is_none() =>
        {
            match caller {
                Some(from) => assistant::answer_text(&state, &tenant, &from, &body).await,
                None => Ok(empty()),
            }
        }
        (Kind::Voice | Kind::Sms, _) => Ok(empty()),
        (Kind::Recording | Kind::Status, _) => Ok(outcome_json(outcome)),
    }
}

/// The form body of a Twilio request whose signature checks out.
pub(super) fn verified_form(
    state: &ApiState,
    req: &HttpRequest,
    raw: &[u8],
) -> Result<Vec<(String, String)>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw)
        .map_err(|_| ApiError::validation("body", "must be application/x-www-form-urlencoded"))?;
    verify(state, req, &pairs)?;
    Ok(pairs)
}

fn outcome_json(outcome: Outcome) -> HttpResponse {
    outcome.json(Provider::Twilio)
}

fn normalise(phone: &str) -> Result<String, ApiError> {
    Ok(PhoneE164::try_from(phone)?.to_string())
}

/// Twilio signs the URL it called: our public base URL plus the path and query.
fn verify(state: &ApiState, req: &HttpRequest, pairs: &[(String, String)]) -> Result<(), ApiError> {
    let token = state
        .ctx
        .config
        .webhooks
        .twilio_auth_token
        .as_ref()
        .ok_or_else(|| super::refused(signature::SignatureError::NotConfigured))?;
    let base = match &state.ctx.config.http.public_base_url {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    let url = match req.query_string() {
        "" => format!("{base}{}", req.path()),
        query => format!("{base}{}?{query}", req.path()),
    };
    let header = req
        .headers()
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    signature::twilio(token.expose(), &url, pairs, header).map_err(super::refused)
}

impl TwilioDelivery {
    /// `From`, when it is a phone number.
    fn sender(&self) -> Option<PhoneE164> {
        self.params
            .get("From")
            .and_then(|p| PhoneE164::try_from(p.as_str()).ok())
    }
}

#[async_trait(?Send)]
impl Effects for TwilioDelivery {
    /// Inbound calls and messages are about their sender; status and recording callbacks name
    /// no caller reliably and stay in the tenant's lane.
    fn caller(&self) -> Option<String> {
        match self.kind {
            Kind::Voice | Kind::Sms => self.sender().map(|phone| phone.to_string()),
            Kind::Recording | Kind::Status => None,
        }
    }

    async fn apply(&self, ctx: &DeliveryContext<'_>) -> Result<(), ApiError> {
        let get = |name: &str| self.params.get(name).filter(|v| !v.is_empty()).cloned();
        let caller = self.sender();
        let lead_id = match (&caller, self.kind) {
            (Some(phone), Kind::Voice | Kind::Sms) => {
                Some(lead_by_phone(ctx.utx, phone, None, "twilio").await?)
            }
            _ => None,
        };
        match self.kind {
            Kind::Voice => {
                let call = upsert_call(
                    ctx.utx,
                    CallFacts {
                        provider: "twilio",
                        provider_call_id: get("CallSid").unwrap_or_default(),
                        lead_id,
                        direction: get("Direction"),
                        status: get("CallStatus").unwrap_or_else(|| "ringing".to_owned()),
                        started_at: Some(Utc::now()),
                        ..CallFacts::default()
                    },
                )
                .await?;
                let mut event = ctx.event(
                    TELEPHONY_CALL_RECEIVED,
                    json!({ "call_id": call.id, "provider": "twilio", "status": call.status }),
                );
                if let Some(lead) = lead_id {
                    event = event.with_lead(lead);
                }
                ctx.emit(event);
                Ok(())
            }
            Kind::Sms => {
                let now = Utc::now();
                let row = message::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    company_id: Set(ctx.tenant.to_string()),
                    lead_id: Set(lead_id.map(Uuid::from)),
                    direction: Set("inbound".to_owned()),
                    from_number: Set(get("From").unwrap_or_default()),
                    to_number: Set(get("To").unwrap_or_default()),
                    body: Set(get("Body").unwrap_or_default()),
                    provider: Set("twilio".to_owned()),
                    provider_sid: Set(get("MessageSid")),
                    status: Set("received".to_owned()),
                    send_attempted_at: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                };
                message::Entity::insert(row)
                    .on_conflict(
                        OnConflict::columns([
                            message::Column::Provider,
                            message::Column::ProviderSid,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(ctx.utx.conn())
                    .await?;
                if let Some(lead) = lead_id {
                    let body = get("Body").unwrap_or_default();
                    otto_service::messages::apply_consent_keyword(ctx.utx, lead.into(), &body)
                        .await?;
                }
                let mut event = ctx.event(
                    TELEPHONY_SMS_RECEIVED,
                    json!({ "message_sid": get("MessageSid"), "provider": "twilio" }),
                );
                if let Some(lead) = lead_id {
                    event = event.with_lead(lead);
                }
                ctx.emit(event);
                Ok(())
            }
            Kind::Recording => {
                let call = upsert_call(
                    ctx.utx,
                    CallFacts {
                        provider: "twilio",
                        provider_call_id: get("CallSid").unwrap_or_default(),
                        recording_url: get("RecordingUrl"),
                        duration_seconds: get("RecordingDuration").and_then(|d| d.parse().ok()),
                        status: "recorded".to_owned(),
                        ..CallFacts::default()
                    },
                )
                .await?;
                super::enqueue_transcription(ctx, call.id.into())?;
                Ok(())
            }
            Kind::Status if get("MessageSid").is_some() => {
                let sid = get("MessageSid").unwrap_or_default();
                let status = get("MessageStatus").unwrap_or_default();
                otto_service::sms::record_status(ctx.utx, &sid, &status).await?;
                Ok(())
            }
            Kind::Status => {
                let status = get("CallStatus").unwrap_or_default();
                let call = upsert_call(
                    ctx.utx,
                    CallFacts {
                        provider: "twilio",
                        provider_call_id: get("CallSid").unwrap_or_default(),
                        duration_seconds: get("CallDuration").and_then(|d| d.parse().ok()),
                        answered: (status == "completed").then_some(true),
                        status: status.clone(),
                        ..CallFacts::default()
                    },
                )
                .await?;
                ctx.emit(call_status_event(ctx.utx, &call));
                Ok(())
            }
        }
    }
}
