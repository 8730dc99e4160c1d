pub mod appointments;
pub mod assistant;
pub mod calendar;
pub mod calls;
pub mod companies;
pub mod dashboard;
pub mod documents;
pub mod followups;
pub mod leads;
pub mod me;
pub mod messages;
pub mod ops;
pub mod recordings;
pub mod rep_training;
pub mod reports;
pub mod sms;
pub mod tasks;
pub mod team;
pub mod timeline;

use actix_web::HttpRequest;
use actix_web::http::header::IF_MATCH;
use chrono::{DateTime, SecondsFormat, Utc};
use otto_db::TenantTxn;
use otto_domain::{Role, TraceId};
use otto_service::visibility::Viewer;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::request_context::RequestContext;
use crate::state::ApiState;

/// The caller's tenant unit of work; its events carry the request's trace id.
pub(crate) async fn begin(state: &ApiState, caller: &AuthUser) -> Result<TenantTxn, ApiError> {
    let trace = RequestContext::current()
        .map(|c| c.trace_id)
        .unwrap_or_else(TraceId::generate);
    Ok(TenantTxn::begin(&state.ctx.db, &caller.tenant_id, trace).await?)
}

/// Times on output: RFC 3339 in UTC with milliseconds (SPEC section 13).
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What the caller sees: the company (leadership, csr) or its assigned leads' records (rep).
pub(crate) fn viewer(caller: &AuthUser) -> Viewer {
    match caller.role {
        Role::Rep => Viewer::Rep(caller.user_id.clone()),
        Role::Leadership | Role::Csr => Viewer::Company,
    }
}

/// The `ETag` of a versioned resource (leads, appointments).
pub(crate) fn etag(version: i32) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match: "N"` (or `W/"N"`) names. Missing: 428; not a version: 412.
pub(crate) fn if_match_version(req: &HttpRequest) -> Result<i32, ApiError> {
    let raw = req
        .headers()
        .get(IF_MATCH)
        .ok_or(ApiError::PreconditionRequired)?;
    let raw = raw
        .to_str()
        .map_err(|_| ApiError::PreconditionFailed)?
        .trim();
    let raw = raw.strip_prefix("W/").unwrap_or(raw);
    raw.trim_matches('"')
        .parse()
        .map_err(|_| ApiError::PreconditionFailed)
}
