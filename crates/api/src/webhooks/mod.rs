//! Provider webhooks (SPEC section 6): signature verification on the raw body, then exactly-once
//! processing through [`pipeline::deliver`]. Every route sits behind the per-IP public limiter.

mod bland;
mod callrail;
mod clerk;
pub mod pipeline;
pub mod signature;
mod tenants;
mod twilio;
mod uwc;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, web};
use otto_domain::jobs::TranscribeCall;
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::rate_limit::public_rate_limit;
use crate::state::ApiState;
use pipeline::DeliveryContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let limited = || from_fn(public_rate_limit);
    let callrail_route = || {
        web::post().to(
            |s: web::Data<ApiState>, r: HttpRequest, e: web::Path<String>, b: web::Bytes| {
                callrail::receive(s, r, e.into_inner(), b)
            },
        )
    };
    for path in [
        "/webhooks/callrail/{event}",
        "/webhook/callrail/{event}",
        "/call-rail/{event}",
        "/callrail/{event}",
    ] {
        cfg.service(web::resource(path).wrap(limited()).route(callrail_route()));
    }
    for event in ["call-complete", "call-modified"] {
        cfg.service(
            web::resource(format!("/{event}"))
                .wrap(limited())
                .route(web::post().to(
                    move |s: web::Data<ApiState>, r: HttpRequest, b: web::Bytes| {
                        callrail::receive(s, r, event.to_owned(), b)
                    },
                )),
        );
    }
    cfg.service(
        web::resource("/webhooks/twilio/{kind}")
            .wrap(limited())
            .route(web::post().to(
                |s: web::Data<ApiState>, r: HttpRequest, k: web::Path<String>, b: web::Bytes| {
                    twilio::receive(s, r, k.into_inner(), b)
                },
            )),
    )
    .service(
        // Seed 003's mobile paths; Twilio signs the URL it called, so the alias is verified as
        // received.
        web::resource("/mobile/twilio-{kind}")
            .wrap(limited())
            .route(web::post().to(
                |s: web::Data<ApiState>, r: HttpRequest, k: web::Path<String>, b: web::Bytes| {
                    twilio::receive(s, r, k.into_inner(), b)
                },
            )),
    )
    .service(
        web::resource("/sms/twilio-webhook")
            .wrap(limited())
            .route(
                web::post().to(|s: web::Data<ApiState>, r: HttpRequest, b: web::Bytes| {
                    twilio::receive(s, r, "sms".to_owned(), b)
                }),
            ),
    );
    for path in ["/webhooks/clerk", "/clerk-webhook"] {
        cfg.service(
            web::resource(path)
                .wrap(limited())
                .route(web::post().to(clerk::receive)),
        );
    }
    cfg.service(
        web::resource("/webhooks/bland")
            .wrap(limited())
            .route(web::post().to(bland::receive)),
    );
    for event in uwc::EVENTS {
        cfg.service(
            web::resource(format!("/webhooks/uwc/{event}"))
                .wrap(limited())
                .route(web::post().to(
                    move |s: web::Data<ApiState>, r: HttpRequest, b: web::Bytes| {
                        uwc::receive(s, r, Some(event.to_owned()), b)
                    },
                )),
        );
    }
    cfg.service(
        web::resource("/api/v1/shunya/webhook")
            .wrap(limited())
            .route(
                web::post().to(|s: web::Data<ApiState>, r: HttpRequest, b: web::Bytes| {
                    uwc::receive(s, r, None, b)
                }),
            ),
    );
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
fn enqueue_transcription(ctx: &DeliveryContext<'_>, call_id: Uuid) -> Result<(), ApiError> {
    ctx.utx.enqueue(&TranscribeCall {
        tenant_id: ctx.tenant.clone(),
        call_id,
        trace_id: ctx.utx.trace().clone(),
    })?;
    Ok(())
}
