//! The receptionist's HTTP side (SPEC section 16): settings (leadership), the public web widget
//! (`X-Widget-Key`; the company's `widget_allowed_origins` is its CORS list, see `crate::cors`),
//! the staff chat, and feedback. Widget, chat and feedback sit behind the per-IP limiter. The
//! Twilio channels are in `crate::webhooks::assistant`.

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use otto_domain::TenantId;
use otto_service::assistant::feedback::{self, Feedback};
use otto_service::assistant::settings::{self, Settings, SettingsPatch};
use otto_service::assistant::{AssistantError, Channel, Reply};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::appointments::Appointment;
use super::begin;
use crate::auth::lockdown::Unlocked;
use crate::auth::{AnyRole, Authorized, Leadership, Staff};
use crate::error::ApiError;
use crate::problem_kinds as kinds;
use crate::rate_limit::public_rate_limit;
use crate::state::ApiState;

pub const WIDGET_KEY_HEADER: &str = "x-widget-key";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        crate::route_list::resource("/v1/assistant")
            .get(get_settings)
            .patch(patch_settings),
    )
    .service(crate::route_list::resource("/v1/assistant/widget-key").post(rotate_widget_key));
    let public = |path: &str| crate::route_list::resource(path).wrap(from_fn(public_rate_limit));
    cfg.service(public("/v1/widget/sessions").post(open_widget_session))
        .service(public("/v1/widget/sessions/{id}/messages").post(widget_message))
        .service(public("/v1/chat/sessions").post(open_chat_session))
        .service(public("/v1/chat/sessions/{id}/messages").post(chat_message))
        .service(public("/v1/feedback").post(leave_feedback));
}

/// The settings as the API shows them (`business_hours` keyed `monday`..`sunday`).
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct SettingsBody(Value);

fn settings_body(settings: &Settings) -> Result<web::Json<Value>, ApiError> {
    Ok(web::Json(
        serde_json::to_value(settings).map_err(|e| ApiError::Internal(e.into()))?,
    ))
}

pub(crate) fn api_error(err: AssistantError) -> ApiError {
    match err {
        AssistantError::Disabled => ApiError::Refused {
            kind: &kinds::ASSISTANT_DISABLED,
            detail: err.to_string(),
        },
        AssistantError::Locked => ApiError::Locked,
        AssistantError::NotFound => ApiError::NotFound,
        AssistantError::Busy => ApiError::Refused {
            kind: &kinds::CONVERSATION_BUSY,
            detail: err.to_string(),
        },
        AssistantError::Store(store) => ApiError::Unavailable(store.into()),
        AssistantError::Service(service) => service.into(),
    }
}

#[utoipa::path(get, path = "/v1/assistant", tag = "assistant", security(("bearer" = [])),
    responses((status = 200, body = SettingsBody, description = "`{enabled, greeting, business_hours, services, transfer_number, slot_minutes, min_notice_minutes, widget_allowed_origins, widget_key}`")))]
pub async fn get_settings(
    state: web::Data<ApiState>,
    caller: Authorized<Leadership>,
) -> Result<web::Json<Value>, ApiError> {
    let utx = begin(&state, &caller).await?;
    let settings = settings::ensure(&utx).await?;
    utx.commit(&state.ctx).await?;
    settings_body(&settings)
}

#[utoipa::path(patch, path = "/v1/assistant", tag = "assistant", security(("bearer" = [])), request_body = SettingsBody,
    responses((status = 200, body = SettingsBody, description = "Changed"),
        (status = 422, body = crate::problem::Problem, description = "Invalid hours, slot length, notice, number or origin: nothing changed")))]
pub async fn patch_settings(
    state: web::Data<ApiState>,
    caller: Unlocked<Leadership>,
    body: web::Json<Value>,
) -> Result<web::Json<Value>, ApiError> {
    let patch: SettingsPatch = serde_json::from_value(body.into_inner())
        .map_err(|e| ApiError::validation("body", e.to_string()))?;
    let utx = begin(&state, &caller.0).await?;
    let settings = settings::update(&utx, patch).await?;
    utx.commit(&state.ctx).await?;
    state.assistant.forget(&caller.0.tenant_id);
    settings_body(&settings)
}

#[utoipa::path(post, path = "/v1/assistant/widget-key", tag = "assistant", security(("bearer" = [])),
    responses((status = 200, body = SettingsBody, description = "A new `widget_key`; the old one stops working")))]
pub async fn rotate_widget_key(
    state: web::Data<ApiState>,
    caller: Unlocked<Leadership>,
) -> Result<web::Json<Value>, ApiError> {
    let utx = begin(&state, &caller.0).await?;
    let settings = settings::rotate_widget_key(&utx).await?;
    utx.commit(&state.ctx).await?;
    state.assistant.forget(&caller.0.tenant_id);
    settings_body(&settings)
}

/// The company an `X-Widget-Key` names (missing or unknown: 401).
pub(crate) async fn widget_tenant(
    state: &ApiState,
    req: &HttpRequest,
) -> Result<TenantId, ApiError> {
    let key = req
        .headers()
        .get(WIDGET_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized("X-Widget-Key is required.".to_owned()))?;
    state
        .assistant
        .widget_owner(&state.ctx, key)
        .await
        .map_err(api_error)?
        .map(|owner| owner.tenant)
        .ok_or_else(|| ApiError::Unauthorized("Unknown widget key.".to_owned()))
}

#[derive(Serialize, ToSchema)]
pub struct SessionOpened {
    session_id: String,
    greeting: String,
}

async fn open(
    state: &ApiState,
    tenant: &TenantId,
    channel: Channel,
    prefix: &str,
) -> Result<HttpResponse, ApiError> {
    let id = format!("{prefix}_{}", Uuid::new_v4().simple());
    let reply = state
        .assistant
        .start(&state.ctx, tenant, channel, &id, None)
        .await
        .map_err(api_error)?;
    Ok(HttpResponse::Created().json(SessionOpened {
        session_id: id,
        greeting: reply.text,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnRequest {
    /// What the visitor typed (1-2,000 characters).
    text: String,
}

#[derive(Serialize, ToSchema)]
pub struct TurnAnswer {
    reply: String,
    /// `collecting`, `offering`, `message`, `booked` or `transferred`.
    state: String,
    appointment: Option<Appointment>,
}

async fn turn(
    state: &ApiState,
    tenant: &TenantId,
    id: &str,
    body: TurnRequest,
) -> Result<web::Json<TurnAnswer>, ApiError> {
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > 2_000 {
        return Err(ApiError::validation("text", "must be 1-2,000 characters"));
    }
    let reply: Reply = state
        .assistant
        .turn(&state.ctx, tenant, id, Some(text))
        .await
        .map_err(api_error)?;
    Ok(web::Json(TurnAnswer {
        reply: reply.text,
        state: reply.state.to_owned(),
        appointment: reply.appointment.map(Appointment::from),
    }))
}

#[utoipa::path(post, path = "/v1/widget/sessions", tag = "assistant",
    params(("X-Widget-Key" = String, Header, description = "The company's widget key")),
    responses((status = 201, body = SessionOpened, description = "A conversation (its id is the session id) and the greeting"),
        (status = 401, body = crate::problem::Problem, description = "Missing or unknown widget key"),
        (status = 403, body = crate::problem::Problem, description = "`assistant-disabled`, or an origin not in the company's `widget_allowed_origins`"),
        (status = 423, body = crate::problem::Problem, description = "The company is in lockdown"),
        (status = 429, body = crate::problem::Problem, description = "Per-IP limit")))]
pub async fn open_widget_session(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = widget_tenant(&state, &req).await?;
    open(&state, &tenant, Channel::Widget, "ws").await
}

#[utoipa::path(post, path = "/v1/widget/sessions/{id}/messages", tag = "assistant", request_body = TurnRequest,
    params(("X-Widget-Key" = String, Header, description = "The company's widget key")),
    responses((status = 200, body = TurnAnswer, description = "The receptionist's reply"),
        (status = 404, body = crate::problem::Problem, description = "No such session (or another company's)"),
        (status = 409, body = crate::problem::Problem, description = "`conversation-busy`")))]
pub async fn widget_message(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<TurnRequest>,
) -> Result<web::Json<TurnAnswer>, ApiError> {
    let tenant = widget_tenant(&state, &req).await?;
    turn(&state, &tenant, &id, body.into_inner()).await
}

#[utoipa::path(post, path = "/v1/chat/sessions", tag = "assistant", security(("bearer" = [])),
    responses((status = 201, body = SessionOpened, description = "A conversation with the company's receptionist, to try it")))]
pub async fn open_chat_session(
    state: web::Data<ApiState>,
    caller: Authorized<Staff>,
) -> Result<HttpResponse, ApiError> {
    open(&state, &caller.tenant_id, Channel::Chat, "chat").await
}

#[utoipa::path(post, path = "/v1/chat/sessions/{id}/messages", tag = "assistant", security(("bearer" = [])), request_body = TurnRequest,
    responses((status = 200, body = TurnAnswer, description = "The receptionist's reply")))]
pub async fn chat_message(
    state: web::Data<ApiState>,
    caller: Authorized<Staff>,
    id: web::Path<String>,
    body: web::Json<TurnRequest>,
) -> Result<web::Json<TurnAnswer>, ApiError> {
    turn(&state, &caller.tenant_id, &id, body.into_inner()).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    session_id: String,
    /// 1 to 5.
    rating: i32,
    comment: Option<String>,
}

#[utoipa::path(post, path = "/v1/feedback", tag = "assistant", request_body = FeedbackRequest,
    params(("X-Widget-Key" = Option<String>, Header, description = "The widget's key (else a bearer token)")),
    responses((status = 201, description = "Recorded"),
        (status = 404, body = crate::problem::Problem, description = "No such session of the company"),
        (status = 422, body = crate::problem::Problem, description = "Rating not 1-5, or comment over 2,000 characters")))]
pub async fn leave_feedback(
    state: web::Data<ApiState>,
    req: HttpRequest,
    staff: Option<Authorized<AnyRole>>,
    body: web::Json<FeedbackRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = match staff {
        Some(caller) if !req.headers().contains_key(WIDGET_KEY_HEADER) => caller.tenant_id.clone(),
        _ => widget_tenant(&state, &req).await?,
    };
    let body = body.into_inner();
    let feedback = Feedback {
        session_id: body.session_id,
        rating: body.rating,
        comment: body.comment,
    };
    feedback::record(&state.ctx, &tenant, feedback)
        .await
        .map_err(api_error)?;
    Ok(HttpResponse::Created().json(json!({"recorded": true})))
}
