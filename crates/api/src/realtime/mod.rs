//! Real-time transport (SPEC section 7): `GET /ws` authenticated like HTTP, channels with ACL,
//! fan-out from the event bus through one router per process, heartbeats, bounded buffers.

mod connection;
pub mod hub;
mod inbound;
mod outbound;

use actix_web::body::MessageBody;
use actix_web::{HttpRequest, HttpResponse, web};
use otto_domain::{EventEnvelope, TenantId, TraceId};
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

use crate::auth;
use crate::error::ApiError;
use crate::rate_limit::client_ip;
use crate::request_context::RequestContext;
use crate::state::ApiState;
use connection::Connection;
use inbound::Inbound;
use outbound::{NoticeTo, OutboundBody};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::route_list::resource("/ws").get(websocket))
        .service(crate::route_list::resource("/ws/test-emit").get(test_emit));
}

/// The token of the upgrade: `Authorization: Bearer`, or `?access_token=` for browsers.
fn upgrade_token(req: &HttpRequest) -> Option<String> {
    if let Some(token) = auth::bearer_token(req) {
        return Some(token.to_owned());
    }
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()?;
    query.get("access_token").filter(|t| !t.is_empty()).cloned()
}

/// Authenticates (401 before any frame), upgrades, and hands the socket to its own task.
pub async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let user = auth::authenticate_token(upgrade_token(&req).as_deref(), &state).await?;
    let mut handshake = actix_http::ws::handshake(req.head())
        .map_err(|e| ApiError::validation("upgrade", e.to_string()))?;
    let trace = RequestContext::current()
        .map(|c| c.trace_id)
        .unwrap_or_else(TraceId::generate);
    let hub = state.hub.clone();
    let (id, outbound) = hub.connect();
    let ip =
        client_ip(&req, &state.ctx.config.rate_limits.trusted_proxies).map(|ip| ip.to_string());
    // A root span: as a child of the upgrade request's span it would keep that span (and its
    // fields) alive for as long as the connection lasts. The trace id links the two.
    let span = tracing::info_span!(
        parent: None,
        "websocket",
        connection_id = id,
        tenant_id = %user.tenant_id,
        user_id = %user.user_id,
        trace_id = %trace,
        client_ip = ip,
    );
    span.in_scope(|| tracing::info!("websocket connected"));
    let notice_to = NoticeTo {
        tenant: user.tenant_id.clone(),
        trace,
    };
    let response = handshake
        .message_body(OutboundBody::new(outbound.clone(), notice_to).boxed())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("websocket response: {e}")))?;
    let connection = Connection {
        state: state.clone(),
        hub,
        user,
        id,
        outbound,
    };
    actix_web::rt::spawn(connection.serve(Inbound::new(body)).instrument(span));
    Ok(response.into())
}

#[derive(Deserialize)]
pub struct EmitQuery {
    event: String,
    tenant_id: String,
}

/// Development-only routes: 404 in production or without `DEV_EMIT_KEY`, 403 with a wrong
/// `X-Dev-Key`.
pub(crate) fn require_dev_key(req: &HttpRequest, state: &ApiState) -> Result<(), ApiError> {
    let config = &state.ctx.config;
    let Some(key) = config
        .realtime
        .dev_emit_key
        .as_ref()
        .filter(|_| config.environment != otto_runtime::Environment::Production)
    else {
        return Err(ApiError::NotFound);
    };
    let given = req
        .headers()
        .get("x-dev-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if given.as_bytes() != key.expose().as_bytes() {
        return Err(ApiError::Forbidden("Wrong X-Dev-Key.".to_owned()));
    }
    Ok(())
}

/// Publishes a test event (development only): 404 in production or without `DEV_EMIT_KEY`,
/// 403 with a wrong `X-Dev-Key`.
pub async fn test_emit(
    req: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<EmitQuery>,
) -> Result<HttpResponse, ApiError> {
    require_dev_key(&req, &state)?;
    let tenant = TenantId::try_from(query.tenant_id.as_str())?;
    let trace = RequestContext::current()
        .map(|c| c.trace_id)
        .unwrap_or_else(TraceId::generate);
    let envelope = EventEnvelope::new(
        query.event.clone(),
        tenant,
        trace,
        json!({ "test": true, "sent_at": chrono::Utc::now().timestamp_millis() }),
    );
    state
        .ctx
        .bus
        .publish(&envelope)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    Ok(HttpResponse::Accepted()
        .json(json!({ "published": true, "event": envelope.event, "trace_id": envelope.trace_id })))
}
