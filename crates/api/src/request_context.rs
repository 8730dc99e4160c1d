//! Per-request context: the trace id (caller's `X-Request-Id`, else W3C `traceparent`, else
//! new), echoed as `X-Request-Id`, carried by the request's span into every log line, and
//! readable from any code running for the request (errors, events, jobs).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use otto_domain::TraceId;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: &str = "traceparent";

/// Ops endpoints are scraped constantly; their completions are logged at debug only.
const QUIET_ROUTES: [&str; 4] = [
    "/health",
    "/ready",
    "/metrics",
    "/internal/worker/heartbeat",
];

tokio::task_local! {
    static CURRENT: RequestContext;
}

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub trace_id: TraceId,
    pub path: String,
}

impl RequestContext {
    /// The context of the request being served by this task, if any.
    pub fn current() -> Option<RequestContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    fn from_request(req: &ServiceRequest) -> Self {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let trace_id = header(REQUEST_ID.as_str())
            .and_then(TraceId::parse)
            .or_else(|| header(TRACEPARENT).and_then(TraceId::from_traceparent))
            .unwrap_or_else(TraceId::generate);
        Self {
            trace_id,
            path: req.path().to_owned(),
        }
    }
}

pub async fn track_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let context = RequestContext::from_request(&req);
    req.extensions_mut().insert(context.clone());
    let method = req.method().to_string();
    let span = tracing::info_span!(
        "request",
        trace_id = %context.trace_id,
        method = %method,
        route = tracing::field::Empty,
        tenant_id = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );
    if let Some(traceparent) = req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok()) {
        otto_runtime::telemetry::otlp::follow_traceparent(&span, traceparent);
    }
    let started = Instant::now();
    let trace_id = context.trace_id.clone();
    let request_id = HeaderValue::from_str(trace_id.as_str()).ok();
    let result = CURRENT
        .scope(context, async move {
            // An error that escaped every handler is rendered while the context is still set,
            // so its problem body carries the trace id.
            next.call(req).await.map_err(|err| {
                let response = err.error_response();
                (err, response)
            })
        })
        .instrument(span.clone())
        .await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut response = match result {
        Ok(response) => response,
        Err((err, mut rendered)) => {
            record_metrics("unmatched", &method, rendered.status().as_u16(), elapsed_ms);
            if let Some(value) = request_id {
                rendered.headers_mut().insert(REQUEST_ID, value);
            }
            return Err(actix_web::error::InternalError::from_response(err, rendered).into());
        }
    };
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16();
    span.record("route", route.as_str());
    record_metrics(&route, &method, status, elapsed_ms);
    if let Some(value) = request_id {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let _entered = span.enter();
    let latency_ms = elapsed_ms.round() as u64;
    if QUIET_ROUTES.contains(&route.as_str()) {
        tracing::debug!(status, latency_ms, "request completed");
    } else {
        tracing::info!(status, latency_ms, "request completed");
    }
    Ok(response)
}

fn record_metrics(route: &str, method: &str, status: u16, elapsed_ms: f64) {
    metrics::counter!(
        "http_requests_total",
        "route" => route.to_owned(),
        "method" => method.to_owned(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "http_request_duration_ms",
        "route" => route.to_owned(),
        "method" => method.to_owned()
    )
    .record(elapsed_ms);
}
