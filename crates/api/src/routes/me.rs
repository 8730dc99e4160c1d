//! `GET /v1/me`: who the caller is, as Otto sees them.

use actix_web::web;
use otto_db::entities::sales_rep;
use sea_orm::{ColumnTrait, QueryFilter};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{AnyRole, Authorized};
use crate::error::ApiError;
use crate::state::ApiState;

#[derive(Serialize, ToSchema)]
pub struct Me {
    user_id: String,
    tenant_id: String,
    user_role: String,
    /// The caller's sales-rep record, when they have one.
    rep_id: Option<String>,
}

#[utoipa::path(get, path = "/v1/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Me, description = "OK"), (status = 401, body = crate::problem::Problem, description = "Not authenticated")))]
pub async fn me(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
) -> Result<web::Json<Me>, ApiError> {
    let utx = super::begin(&state, &caller).await?;
    let rep = utx
        .scope()
        .select::<sales_rep::Entity>()
        .filter(sales_rep::Column::UserId.eq(caller.user_id.as_str()))
        .filter(sales_rep::Column::Active.eq(true))
        .one(utx.conn())
        .await?;
    utx.finish_read().await?;
    Ok(web::Json(Me {
        user_id: caller.user_id.to_string(),
        tenant_id: caller.tenant_id.to_string(),
        user_role: caller.role.to_string(),
        rep_id: rep.map(|r| r.id.to_string()),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct SessionCheck {
    tenant_id: String,
    user_role: String,
}

/// A cheap session check for clients: verifies the token and the rate limits, touches no
/// table. (Also the route the auth-overhead benchmark measures.)
#[utoipa::path(get, path = "/v1/session", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = SessionCheck, description = "OK"), (status = 401, body = crate::problem::Problem, description = "Not authenticated")))]
pub async fn session(caller: Authorized<AnyRole>) -> web::Json<SessionCheck> {
    web::Json(SessionCheck {
        tenant_id: caller.tenant_id.to_string(),
        user_role: caller.role.to_string(),
    })
}
