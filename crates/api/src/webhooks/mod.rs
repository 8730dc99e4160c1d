//! Provider webhooks (SPEC section 6): signature verification on the raw body, then exactly-once
//! processing through [`pipeline::deliver`]. Every route sits behind the per-IP public limiter.

mod assistant;
mod bland;
mod callrail;
mod clerk;
pub mod pipeline;
pub mod signature;
mod tenants;
mod twilio;
mod uwc;

#[cfg(test)]
mod parsing_properties;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, web};
use otto_domain::CallId;
use otto_domain::jobs::TranscribeCall;
use serde_json::Value;

use crate::error::ApiError;
use crate::rate_limit::public_rate_limit;
use crate::state::ApiState;
use pipeline::DeliveryContext;

/// The CallRail paths taking the event as their last segment (seed 003's aliases included).
const CALLRAIL_PATHS: [&str; 4] = [
    "/webhooks/callrail/{event}",
    "/webhook/callrail/{event}",
    "/call-rail/{event}",
    "/callrail/{event}",
];
/// CallRail events with a bare path of their own.
const CALLRAIL_BARE_EVENTS: [&str; 2] = ["call-complete", "call-modified"];
/// Twilio paths taking the kind (`voice`, `sms`, `recording`, `status`); the mobile ones are
/// seed 003's (Twilio signs the URL it called, so an alias is verified as received).
const TWILIO_PATHS: [&str; 2] = ["/webhooks/twilio/{kind}", "/mobile/twilio-{kind}"];
const TWILIO_LEGACY_SMS: &str = "/sms/twilio-webhook";
const CLERK_PATHS: [&str; 2] = ["/webhooks/clerk", "/clerk-webhook"];
const BLAND_PATH: &str = "/webhooks/bland";
const UWC_LEGACY: &str = "/api/v1/shunya/webhook";

/// Every webhook path with the provider it serves: what `configure` registers and what the
/// OpenAPI document lists.
pub fn documented() -> Vec<(String, &'static str)> {
    let mut paths: Vec<(String, &'static str)> = Vec::new();
    paths.extend(CALLRAIL_PATHS.map(|p| (p.to_owned(), "callrail")));
    paths.extend(CALLRAIL_BARE_EVENTS.map(|e| (format!("/{e}"), "callrail")));
    paths.extend(TWILIO_PATHS.map(|p| (p.to_owned(), "twilio")));
    paths.push((TWILIO_LEGACY_SMS.to_owned(), "twilio"));
    paths.push((assistant::TURN_PATH.to_owned(), "twilio"));
    paths.extend(CLERK_PATHS.map(|p| (p.to_owned(), "clerk")));
    paths.push((BLAND_PATH.to_owned(), "bland"));
    paths.extend(uwc::EVENTS.map(|e| (format!("/webhooks/uwc/{e}"), "uwc")));
    paths.push((UWC_LEGACY.to_owned(), "uwc"));
    paths
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Every webhook sits behind the per-IP public limiter.
    let post = |path: String, route: actix_web::Route| {
        crate::route_list::resource(path)
            .wrap(from_fn(public_rate_limit))
            .route(route)
    };
    for path in CALLRAIL_PATHS {
        cfg.service(post(
            path.to_owned(),
            web::post().to(
                |s: web::Data<ApiState>, r: HttpRequest, e: web::Path<String>, b: web::Bytes| {
                    callrail::receive(s, r, e.into_inner(), b)
                },
            ),
        ));
    }
    for event in CALLRAIL_BARE_EVENTS {
        cfg.service(post(
            format!("/{event}"),
            web::post().to(
                move |s: web::Data<ApiState>, r: HttpRequest, b: web::Bytes| {
                    callrail::receive(s, r, event.to_owned(), b)
                },
            ),
        ));
    }
    for path in TWILIO_PATHS {
        cfg.service(post(
            path.to_owned(),
            web::post().to(
                |s: web::Data<ApiState>, r: HttpRequest, k: web::Path<String>, b: web::Bytes| {
                    twilio::receive(s, r, k.into_inner(), b)
                },
            ),
        ));
    }
    cfg.service(post(
        assistant::TURN_PATH.to_owned(),
        web::post().to(assistant::voice_turn),
    ));
    cfg.service(post(
        TWILIO_LEGACY_SMS.to_owned(),
        web::post().to(|s: web::Data<ApiState>, r: HttpRequest, b: web::Bytes| {
            twilio::receive(s, r, "sms".to_owned(), b)
        }),
    ));
    for path in CLERK_PATHS {
        cfg.service(post(path.to_owned(), web::post().to(clerk::receive)));
    }
    cfg.service(post(BLAND_PATH.to_owned(), web::post().to(bland::receive)));
    for event in uwc::EVENTS {
        cfg.service(post(
            format!("/webhooks/uwc/{event}"),
            web::post().to(
                move |s: web::Data<ApiState>, r: HttpRequest, b: web::Bytes| {
                    uwc::receive(s, r, Some(event.to_owned()), b)
                },
            ),
        ));
    }
    cfg.service(post(
        UWC_LEGACY.to_owned(),
        web::post().to(|s: web::Data<ApiState>, r: HttpRequest, b: web::Bytes| {
            uwc::receive(s, r, None, b)
        }),
    ));
}

/// A forged, stale or unverifiable delivery: 401, nothing stored.
fn refused(err: signature::SignatureError) -> ApiError {
    tracing::warn!(reason = %err, "webhook signature refused");
    ApiError::Unauthorized(format!("Webhook signature refused: {err}."))
}

fn json_body(raw: &[u8]) -> Result<Value, ApiError> {
    let body: Value = serde_json::from_slice(raw)
        .map_err(|e| ApiError::validation("body", format!("is not JSON: {e}")))?;
    if body.is_object() {
        Ok(body)
    } else {
        Err(ApiError::validation("body", "must be a JSON object"))
    }
}

/// A string or number field as text (providers send ids both ways).
fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Queues the transcription of a call's recording if and only if the delivery commits (see
/// `TenantTxn`: inside the transaction with the database queue, right after it with Redis).
fn enqueue_transcription(ctx: &DeliveryContext<'_>, call_id: CallId) -> Result<(), ApiError> {
    ctx.utx.enqueue(&TranscribeCall {
        tenant_id: ctx.tenant.clone(),
        call_id,
        trace_id: ctx.utx.trace().clone(),
    })?;
    Ok(())
}
