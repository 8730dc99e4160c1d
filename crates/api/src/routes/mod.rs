pub mod calls;
pub mod companies;
pub mod followups;
pub mod leads;
pub mod me;
pub mod messages;
pub mod ops;
pub mod reports;
pub mod team;

use otto_db::TenantTxn;
use otto_domain::TraceId;

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
