//! Google Calendar (SPEC section 15): connect (consent, callback), the connection's status,
//! disconnect, the push channel (`watch`), Google's push notifications and the relay webhook.
//! The work is `otto_service::calendar`'s.

use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use otto_service::calendar::inbound::{self, Push, PushOutcome, RelayChange};
use otto_service::calendar::{CalendarError, CalendarSync, connection};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::appointments::Appointment;
use super::{begin, timestamp};
use crate::auth::lockdown::Unlocked;
use crate::auth::{Authorized, Leadership, Staff};
use crate::error::ApiError;
use crate::problem_kinds as kinds;
use crate::request_context::RequestContext;
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        crate::route_list::resource("/v1/calendar/google")
            .get(calendar_status)
            .delete(disconnect_calendar),
    )
    .service(crate::route_list::resource("/v1/calendar/google/authorize").get(authorize_calendar))
    .service(crate::route_list::resource("/v1/calendar/google/callback").get(calendar_callback))
    .service(crate::route_list::resource("/v1/calendar/google/watch").post(watch_calendar))
    .service(crate::route_list::resource("/v1/calendar/google/push").post(calendar_push))
    .service(crate::route_list::resource("/v1/calendar/google/webhook").post(calendar_relay));
}

fn configured(state: &ApiState) -> Result<&CalendarSync, ApiError> {
    state.calendar.as_ref().ok_or_else(|| ApiError::Refused {
        kind: &kinds::CALENDAR_NOT_CONFIGURED,
        detail: "Google Calendar sync is not configured on this deployment.".to_owned(),
    })
}

fn api_error(err: CalendarError) -> ApiError {
    let refused = |kind, detail: String| ApiError::Refused { kind, detail };
    match err {
        CalendarError::NotConfigured(what) => refused(
            &kinds::CALENDAR_NOT_CONFIGURED,
            format!("Google Calendar sync needs {what}."),
        ),
        CalendarError::NotConnected => refused(&kinds::CALENDAR_NOT_CONNECTED, err.to_string()),
        CalendarError::StateRefused | CalendarError::NoRefreshToken => {
            refused(&kinds::OAUTH_STATE_REFUSED, err.to_string())
        }
        CalendarError::UnknownChannel | CalendarError::NoSuchEvent => ApiError::NotFound,
        CalendarError::WrongChannelToken => ApiError::Unauthorized(err.to_string()),
        CalendarError::Google(google) => {
            tracing::warn!(error = %google, "Google refused a calendar request");
            refused(
                &kinds::CALENDAR_PROVIDER_ERROR,
                "Google did not accept the request; try again later.".to_owned(),
            )
        }
        CalendarError::Crypto(crypto) => ApiError::Internal(crypto.into()),
        CalendarError::Service(service) => service.into(),
    }
}

fn trace() -> otto_domain::TraceId {
    RequestContext::current()
        .map(|c| c.trace_id)
        .unwrap_or_else(otto_domain::TraceId::generate)
}

/// The company's connection.
#[derive(Serialize, ToSchema)]
pub struct CalendarStatus {
    connected: bool,
    calendar_id: Option<String>,
    /// The user who connected it.
    connected_by: Option<String>,
    channel_id: Option<String>,
    channel_expires_at: Option<String>,
    last_synced_at: Option<String>,
}

#[utoipa::path(get, path = "/v1/calendar/google", tag = "calendar", security(("bearer" = [])),
    responses((status = 200, body = CalendarStatus, description = "Whether the company is connected, and its push channel")))]
pub async fn calendar_status(
    state: web::Data<ApiState>,
    caller: Authorized<Leadership>,
) -> Result<web::Json<CalendarStatus>, ApiError> {
    let utx = begin(&state, &caller).await?;
    let row = connection::status(&utx).await.map_err(api_error)?;
    utx.finish_read().await?;
    Ok(web::Json(CalendarStatus {
        connected: row.is_some(),
        calendar_id: row.as_ref().map(|r| r.calendar_id.clone()),
        connected_by: row.as_ref().map(|r| r.connected_by.clone()),
        channel_id: row.as_ref().and_then(|r| r.channel_id.clone()),
        channel_expires_at: row
            .as_ref()
            .and_then(|r| r.channel_expires_at)
            .map(timestamp),
        last_synced_at: row.as_ref().and_then(|r| r.last_synced_at).map(timestamp),
    }))
}

#[utoipa::path(delete, path = "/v1/calendar/google", tag = "calendar", security(("bearer" = [])),
    responses((status = 204, description = "Disconnected: the channel stopped, the tokens forgotten"),
        (status = 409, body = crate::problem::Problem, description = "`calendar-not-connected`"),
        (status = 503, body = crate::problem::Problem, description = "`calendar-not-configured`")))]
pub async fn disconnect_calendar(
    state: web::Data<ApiState>,
    caller: Unlocked<Leadership>,
) -> Result<HttpResponse, ApiError> {
    let sync = configured(&state)?;
    connection::disconnect(sync, &state.ctx, &caller.0.tenant_id, trace())
        .await
        .map_err(api_error)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/v1/calendar/google/authorize", tag = "calendar", security(("bearer" = [])),
    responses((status = 302, description = "To Google's consent page (`Location`); with `Accept: application/json`, 200 `{authorization_url}` instead"),
        (status = 503, body = crate::problem::Problem, description = "`calendar-not-configured`")))]
pub async fn authorize_calendar(
    state: web::Data<ApiState>,
    caller: Unlocked<Leadership>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let sync = configured(&state)?;
    let caller = caller.0;
    let utx = begin(&state, &caller).await?;
    let url = connection::authorize(sync, &state.ctx, utx, &caller.user_id)
        .await
        .map_err(api_error)?;
    let wants_json = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return Ok(HttpResponse::Ok().json(json!({ "authorization_url": url })));
    }
    Ok(HttpResponse::build(StatusCode::FOUND)
        .insert_header((LOCATION, url))
        .finish())
}

#[derive(Deserialize, IntoParams)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// Google's refusal (`access_denied` when the user declined).
    error: Option<String>,
}

#[utoipa::path(get, path = "/v1/calendar/google/callback", tag = "calendar", params(CallbackQuery),
    responses((status = 200, description = "`{connected: true}`: the refresh token is stored, sealed"),
        (status = 400, body = crate::problem::Problem, description = "`oauth-state-refused`: unknown, used or expired `state`, or Google's `error`"),
        (status = 502, body = crate::problem::Problem, description = "`calendar-provider-error`: the code exchange failed")))]
pub async fn calendar_callback(
    state: web::Data<ApiState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let sync = configured(&state)?;
    let query = query.into_inner();
    let refused = |detail: String| ApiError::Refused {
        kind: &kinds::OAUTH_STATE_REFUSED,
        detail,
    };
    if let Some(error) = query.error {
        return Err(refused(format!("Google answered {error}.")));
    }
    let (Some(code), Some(oauth_state)) = (query.code, query.state) else {
        return Err(refused("code and state are required.".to_owned()));
    };
    let tenant = connection::complete(sync, &state.ctx, &oauth_state, &code)
        .await
        .map_err(api_error)?;
    Ok(HttpResponse::Ok().json(json!({ "connected": true, "company_id": tenant })))
}

#[derive(Serialize, ToSchema)]
pub struct WatchAnswer {
    channel_id: String,
    expires_at: Option<String>,
}

#[utoipa::path(post, path = "/v1/calendar/google/watch", tag = "calendar", security(("bearer" = [])),
    responses((status = 200, body = WatchAnswer, description = "The channel is open (the previous one stopped); a full sync is queued"),
        (status = 409, body = crate::problem::Problem, description = "`calendar-not-connected`"),
        (status = 502, body = crate::problem::Problem, description = "`calendar-provider-error`"),
        (status = 503, body = crate::problem::Problem, description = "`calendar-not-configured`")))]
pub async fn watch_calendar(
    state: web::Data<ApiState>,
    caller: Unlocked<Leadership>,
) -> Result<web::Json<WatchAnswer>, ApiError> {
    let sync = configured(&state)?;
    let channel = connection::open_channel(sync, &state.ctx, &caller.0.tenant_id, trace(), true)
        .await
        .map_err(api_error)?;
    Ok(web::Json(WatchAnswer {
        channel_id: channel.channel_id,
        expires_at: channel.expires_at.map(timestamp),
    }))
}

fn push_of(req: &HttpRequest) -> Result<Push, ApiError> {
    let header = |name: &'static str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| ApiError::validation(name, "is required"))
    };
    Ok(Push {
        channel_id: header("X-Goog-Channel-ID")?,
        token: header("X-Goog-Channel-Token")?,
        resource_state: header("X-Goog-Resource-State")?,
        message_number: header("X-Goog-Message-Number")?
            .parse()
            .map_err(|_| ApiError::validation("X-Goog-Message-Number", "must be a number"))?,
    })
}

#[utoipa::path(post, path = "/v1/calendar/google/push", tag = "calendar",
    params(("X-Goog-Channel-ID" = String, Header, description = "The channel"),
        ("X-Goog-Channel-Token" = String, Header, description = "The channel's token"),
        ("X-Goog-Resource-State" = String, Header, description = "`sync`, `exists` or `not_exists`"),
        ("X-Goog-Message-Number" = i64, Header, description = "Increasing per channel")),
    responses((status = 200, description = "`{status: queued|opened|duplicate_ignored}`: acknowledged, the sync runs as a job"),
        (status = 401, body = crate::problem::Problem, description = "Wrong channel token: nothing changed"),
        (status = 404, body = crate::problem::Problem, description = "Unknown channel: nothing changed"),
        (status = 422, body = crate::problem::Problem, description = "A Google header is missing")))]
pub async fn calendar_push(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let push = push_of(&req)?;
    let outcome = inbound::receive_push(&state.ctx, &push, trace())
        .await
        .map_err(api_error)?;
    let status = match outcome {
        PushOutcome::Queued => "queued",
        PushOutcome::Opened => "opened",
        PushOutcome::Replayed => "duplicate_ignored",
    };
    Ok(HttpResponse::Ok().json(json!({ "status": status })))
}

/// A relay's change of one Google event.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayRequest {
    /// The Google event id (the appointment's `google_event_id`).
    event_id: String,
    /// Naive (`2026-12-01T09:00`, the company's time zone) or RFC 3339; required unless cancelled.
    start: Option<String>,
    end: Option<String>,
    /// `cancelled` cancels the appointment; anything else moves it.
    status: Option<String>,
}

#[utoipa::path(post, path = "/v1/calendar/google/webhook", tag = "calendar", security(("bearer" = [])), request_body = RelayRequest,
    responses((status = 200, body = Appointment, description = "The appointment, moved or cancelled (`appointment.updated`)"),
        (status = 404, body = crate::problem::Problem, description = "No appointment has that event"),
        (status = 422, body = crate::problem::Problem, description = "Unreadable or missing times")))]
pub async fn calendar_relay(
    state: web::Data<ApiState>,
    caller: Unlocked<Staff>,
    body: web::Json<RelayRequest>,
) -> Result<web::Json<Appointment>, ApiError> {
    let body = body.into_inner();
    let utx = begin(&state, &caller.0).await?;
    let row = inbound::apply_relay(
        &state.ctx,
        utx,
        RelayChange {
            event_id: body.event_id,
            start: body.start,
            end: body.end,
            status: body.status,
        },
    )
    .await
    .map_err(api_error)?;
    Ok(web::Json(Appointment::from(row)))
}
