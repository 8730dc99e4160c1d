//! `POST /v1/sms` (SPEC section 13): a text to a lead (a rep: only its own) or to a number,
//! recorded `queued` with its send enqueued in one unit of work, answered 202. `Idempotency-Key`
//! makes a retried request answer the first one's result instead of texting twice; a lead that
//! opted out is 422 `sms-opted-out`; lockdown is 423; without Twilio settings 503
//! `sms-not-configured` (Otto never pretends to send).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use otto_db::TenantTxn;
use otto_service::sms::{self, Outbound, SmsError, SmsRequest};
use sea_orm::{ConnectionTrait, DatabaseBackend};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::messages::Message;
use super::{begin, viewer};
use crate::auth::AnyRole;
use crate::auth::AuthUser;
use crate::auth::lockdown::Unlocked;
use crate::error::ApiError;
use crate::idempotency::{self, Answer, Claim};
use crate::problem_kinds as kinds;
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::route_list::resource("/v1/sms").post(send_sms))
        .service(crate::route_list::resource("/v1/followups/{id}/send").post(send_followup));
}

/// `POST /v1/sms`: exactly one of `lead_id` and `to` (E.164).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsBody {
    lead_id: Option<Uuid>,
    to: Option<String>,
    /// 1-1600 characters.
    body: String,
}

fn not_configured() -> ApiError {
    ApiError::Refused {
        kind: &kinds::SMS_NOT_CONFIGURED,
        detail: "Sending SMS needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and a sender number."
            .to_owned(),
    }
}

fn ensure_configured(state: &ApiState) -> Result<(), ApiError> {
    match otto_integrations::twilio::TwilioSettings::from_config(&state.ctx.config) {
        Some(_) => Ok(()),
        None => Err(not_configured()),
    }
}

fn api_error(err: SmsError) -> ApiError {
    match err {
        SmsError::NotFound => ApiError::NotFound,
        SmsError::OptedOut => ApiError::Refused {
            kind: &kinds::SMS_OPTED_OUT,
            detail: "The lead opted out of SMS (texted STOP).".to_owned(),
        },
        SmsError::NoSender => not_configured(),
        SmsError::NotDraft(status) => ApiError::Refused {
            kind: &kinds::FOLLOWUP_ALREADY_SENT,
            detail: format!("The follow-up is {status}."),
        },
        SmsError::Service(err) => err.into(),
    }
}

#[utoipa::path(post, path = "/v1/sms", tag = "messages", security(("bearer" = [])), request_body = SmsBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters; kept 24 h per company")),
    responses((status = 202, body = Message, description = "Queued; the send runs as a job and the status follows Twilio's callbacks"),
        (status = 404, body = crate::problem::Problem, description = "No such lead (or not the rep's)"),
        (status = 409, body = crate::problem::Problem, description = "`idempotency-key-in-use`"),
        (status = 422, body = crate::problem::Problem, description = "Invalid body or number, `sms-opted-out`, `idempotency-key-reused`"),
        (status = 423, body = crate::problem::Problem, description = "The company is in lockdown"),
        (status = 503, body = crate::problem::Problem, description = "`sms-not-configured`")))]
pub async fn send_sms(
    state: web::Data<ApiState>,
    caller: Unlocked<AnyRole>,
    req: HttpRequest,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let caller = caller.0;
    ensure_configured(&state)?;
    let (state, caller, raw) = (&state, &caller, &raw);
    idempotency::once(state, caller, &req, raw, |claim| async move {
        let body: SmsBody =
            serde_json::from_slice(raw).map_err(|e| ApiError::validation("body", e.to_string()))?;
        let request = SmsRequest {
            lead_id: body.lead_id,
            to: body.to,
            body: body.body,
        };
        queue_text(state, caller, &claim, Text::Sms(request)).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/followups/{id}/send", tag = "followups", security(("bearer" = [])),
    request_body(content = Option<String>, description = "None needed (a body counts in the Idempotency-Key fingerprint)"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters; kept 24 h per company")),
    responses((status = 202, body = Message, description = "The draft's text, queued; the follow-up is `sent` with its `message_id`"),
        (status = 404, body = crate::problem::Problem, description = "No such follow-up (or not the rep's)"),
        (status = 409, body = crate::problem::Problem, description = "`followup-already-sent`, `idempotency-key-in-use`"),
        (status = 422, body = crate::problem::Problem, description = "`sms-opted-out`, a lead without a phone, `idempotency-key-reused`"),
        (status = 423, body = crate::problem::Problem, description = "The company is in lockdown"),
        (status = 503, body = crate::problem::Problem, description = "`sms-not-configured`")))]
pub async fn send_followup(
    state: web::Data<ApiState>,
    caller: Unlocked<AnyRole>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let caller = caller.0;
    ensure_configured(&state)?;
    let id = *id;
    let (state, caller) = (&state, &caller);
    idempotency::once(state, caller, &req, &raw, |claim| async move {
        queue_text(state, caller, &claim, Text::Followup(id)).await
    })
    .await
}

/// What is being texted.
enum Text {
    Sms(SmsRequest),
    Followup(Uuid),
}

async fn checks(
    utx: &TenantTxn,
    state: &ApiState,
    caller: &AuthUser,
    text: Text,
) -> Result<(Outbound, Option<Uuid>), ApiError> {
    let default_from = state.ctx.config.integrations.twilio.from_number.as_deref();
    let viewer = viewer(caller);
    match text {
        Text::Sms(request) => sms::prepare(utx, &viewer, default_from, request)
            .await
            .map(|outbound| (outbound, None)),
        Text::Followup(id) => sms::prepare_followup(utx, &viewer, default_from, id)
            .await
            .map(|outbound| (outbound, Some(id))),
    }
    .map_err(api_error)
}

/// Checks `text`, then writes the queued message, its send job and the key's answer in one unit
/// of work. On PostgreSQL the checks read inside that unit of work; on SQLite they read in a
/// read-only one before it (a deferred SQLite transaction that has read cannot take the write
/// lock once another writer committed, see docs/architecture.md).
async fn queue_text(
    state: &ApiState,
    caller: &AuthUser,
    claim: &Claim,
    text: Text,
) -> Result<HttpResponse, ApiError> {
    let utx = begin(state, caller).await?;
    let (outbound, followup) = if utx.conn().get_database_backend() == DatabaseBackend::Postgres {
        checks(&utx, state, caller, text).await?
    } else {
        let read = begin(state, caller).await?;
        let checked = checks(&read, state, caller, text).await;
        read.finish_read().await?;
        checked?
    };
    let queued = match followup {
        Some(id) => sms::queue_followup(&utx, id, outbound).await,
        None => sms::queue(&utx, outbound).await,
    }
    .map_err(api_error)?;
    let answer = Answer::json(StatusCode::ACCEPTED, &Message::from(queued))?;
    claim.record(&utx, &answer).await?;
    utx.commit(&state.ctx).await?;
    Ok(answer.into_response())
}
