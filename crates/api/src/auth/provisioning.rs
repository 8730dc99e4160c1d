//! Just-in-time provisioning (first authenticated contact creates the company and user rows,
//! so Clerk webhooks and first logins may arrive in either order) and the audit trail of
//! refused requests.

use actix_web::HttpRequest;
use chrono::Utc;
use otto_db::entities::audit_log;
use otto_domain::Role;
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::AuthUser;
use crate::error::ApiError;
use crate::request_context::RequestContext;
use crate::state::ApiState;

/// Members already provisioned by this process; bounded so it cannot grow without limit.
const KNOWN_MEMBERS_CAPACITY: usize = 100_000;

pub async fn ensure_known(state: &ApiState, member: &AuthUser) -> Result<(), ApiError> {
    let key = (
        member.tenant_id.to_string(),
        member.user_id.to_string(),
        member.role,
    );
    if state
        .known_members
        .lock()
        .is_ok_and(|known| known.contains(&key))
    {
        return Ok(());
    }
    // Identity resolution, like a webhook's tenant resolution, runs outside row-level security:
    // a verified token may name a user Otto knows under another company (the user moved), and
    // only the owning role may move their row.
    otto_service::members::provision_member(
        &state.ctx.db,
        &member.tenant_id,
        &member.user_id,
        member.role,
        None,
    )
    .await?;
    if let Ok(mut known) = state.known_members.lock() {
        if known.len() >= KNOWN_MEMBERS_CAPACITY {
            known.clear();
        }
        known.insert(key);
    }
    Ok(())
}

/// Refuses `member` a route or a field that needs one of `required`: the audit row, the log
/// line and the 403, the same for every refusal.
pub async fn refuse(
    state: &ApiState,
    req: &HttpRequest,
    member: &AuthUser,
    required: &[Role],
) -> ApiError {
    record_refusal(state, req, member, required).await;
    ApiError::Forbidden(super::roles::refusal_detail(required, member.role))
}

/// An audit row and a log line for a refused request (SPEC section 12).
async fn record_refusal(state: &ApiState, req: &HttpRequest, member: &AuthUser, required: &[Role]) {
    let route = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
    let trace_id = RequestContext::current().map(|c| c.trace_id.to_string());
    let required: Vec<&str> = required.iter().map(|r| r.as_str()).collect();
    tracing::warn!(
        tenant_id = %member.tenant_id,
        user_id = %member.user_id,
        route = %route,
        required_roles = %required.join(","),
        user_role = %member.role,
        "access denied: role not allowed"
    );
    let row = audit_log::ActiveModel {
        company_id: Set(Some(member.tenant_id.to_string())),
        user_id: Set(Some(member.user_id.to_string())),
        action: Set("access_denied".to_owned()),
        route: Set(Some(route)),
        trace_id: Set(trace_id),
        detail: Set(Some(
            serde_json::json!({ "required_roles": required, "user_role": member.role }),
        )),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Err(err) = audit_log::Entity::insert(row)
        .exec_without_returning(&state.ctx.db)
        .await
    {
        tracing::error!(error = %err, "could not write the access-denied audit row");
    }
}
