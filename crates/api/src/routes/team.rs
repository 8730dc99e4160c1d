//! The team (SPEC section 13): `GET /v1/users` (leadership, csr) with each user's rep id, and
//! `GET|PATCH /v1/reps` (the rep rows kept in step with the `rep` role by the service layer).
//! Role changes (`PATCH /v1/users/{id}`, leadership, never one's own) are made in Clerk first
//! (`otto_service::members::change_role`).

use std::collections::HashMap;

use actix_web::web;
use otto_db::entities::{sales_rep, user};
use otto_domain::catalog::IDENTITY_USER_UPDATED;
use otto_domain::{PhoneE164, Role, TraceId, UserId};
use otto_service::members::{self, RoleChangeError};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{begin, timestamp};
use crate::auth::{AnyRole, Authorized, Leadership, Staff};
use crate::error::ApiError;
use crate::pagination::{Page, PageQuery};
use crate::request_context::RequestContext;
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::route_list::resource("/v1/users").get(list_users))
        .service(crate::route_list::resource("/v1/users/{id}").patch(patch_user))
        .service(crate::route_list::resource("/v1/reps").get(list_reps))
        .service(
            crate::route_list::resource("/v1/reps/{id}")
                .get(super::rep_training::get_rep)
                .patch(patch_rep),
        )
        .service(
            crate::route_list::resource("/v1/reps/{id}/training")
                .post(super::rep_training::train_rep),
        );
}

#[derive(Serialize, ToSchema)]
pub struct TeamUser {
    id: String,
    email: Option<String>,
    name: Option<String>,
    role: String,
    rep_id: Option<Uuid>,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct Rep {
    id: Uuid,
    user_id: String,
    name: String,
    phone: Option<String>,
    active: bool,
    /// UWC voice/style model: `queued|submitted|completed|failed`, or none yet.
    training_status: Option<String>,
    trained_at: Option<String>,
}

impl From<sales_rep::Model> for Rep {
    fn from(row: sales_rep::Model) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            name: row.display_name,
            phone: row.phone,
            active: row.active,
            training_status: row.training_status,
            trained_at: row.trained_at.map(timestamp),
        }
    }
}

/// `PATCH /v1/users/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `leadership|csr|rep`.
    role: String,
}

#[derive(Deserialize, IntoParams)]
pub struct RepQuery {
    /// Only active (or only inactive) reps.
    active: Option<bool>,
}

/// `PATCH /v1/reps/{id}`: absent fields stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepPatch {
    name: Option<String>,
    phone: Option<String>,
    active: Option<bool>,
}

#[utoipa::path(get, path = "/v1/users", tag = "team", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, description = "`{items: [TeamUser], next_cursor}`, ordered by id"),
        (status = 403, body = crate::problem::Problem, description = "Role not allowed")))]
pub async fn list_users(
    state: web::Data<ApiState>,
    caller: Authorized<Staff>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<TeamUser>>, ApiError> {
    let limit = page.limit()?;
    let utx = begin(&state, &caller).await?;
    let mut query = utx
        .scope()
        .select::<user::Entity>()
        .order_by_asc(user::Column::Id)
        .limit(limit + 1);
    if let Some(cursor) = page.cursor_text() {
        query = query.filter(user::Column::Id.gt(cursor));
    }
    let users = query.all(utx.conn()).await?;
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let reps: HashMap<String, Uuid> = utx
        .scope()
        .select::<sales_rep::Entity>()
        .filter(sales_rep::Column::UserId.is_in(ids))
        .filter(sales_rep::Column::Active.eq(true))
        .all(utx.conn())
        .await?
        .into_iter()
        .map(|rep| (rep.user_id, rep.id))
        .collect();
    utx.finish_read().await?;
    Ok(web::Json(Page::from_rows(
        users,
        limit,
        |row| row.id.clone(),
        |row| TeamUser {
            rep_id: reps.get(&row.id).copied(),
            created_at: timestamp(row.created_at),
            id: row.id,
            email: row.email,
            name: row.name,
            role: row.role,
        },
    )))
}

#[utoipa::path(patch, path = "/v1/users/{id}", tag = "team", security(("bearer" = [])), request_body = UserPatch,
    responses((status = 200, body = TeamUser, description = "The user with the new role (Clerk changed first)"),
        (status = 403, body = crate::problem::Problem, description = "Not leadership, or one's own role"),
        (status = 404, body = crate::problem::Problem, description = "No such user in the company"),
        (status = 422, body = crate::problem::Problem, description = "Unknown role"),
        (status = 503, body = crate::problem::Problem, description = "Clerk refused or could not be reached; nothing changed")))]
pub async fn patch_user(
    state: web::Data<ApiState>,
    caller: Authorized<Leadership>,
    id: web::Path<String>,
    patch: web::Json<UserPatch>,
) -> Result<web::Json<TeamUser>, ApiError> {
    let target = UserId::try_from(id.as_str()).map_err(|_| ApiError::NotFound)?;
    if target == caller.user_id {
        return Err(ApiError::Forbidden(
            "one's own role cannot be changed".to_owned(),
        ));
    }
    let role = Role::ALL
        .into_iter()
        .find(|role| role.as_str() == patch.role)
        .ok_or_else(|| ApiError::validation("role", "must be one of leadership, csr, rep"))?;
    let trace = RequestContext::current()
        .map(|c| c.trace_id)
        .unwrap_or_else(TraceId::generate);
    let user = members::change_role(
        &state.ctx,
        state.clerk.as_ref(),
        &caller.tenant_id,
        trace,
        &target,
        role,
    )
    .await
    .map_err(role_change_error)?;
    let utx = begin(&state, &caller).await?;
    let rep = utx
        .scope()
        .select::<sales_rep::Entity>()
        .filter(sales_rep::Column::UserId.eq(user.id.as_str()))
        .filter(sales_rep::Column::Active.eq(true))
        .one(utx.conn())
        .await?;
    utx.finish_read().await?;
    Ok(web::Json(TeamUser {
        rep_id: rep.map(|rep| rep.id),
        created_at: timestamp(user.created_at),
        id: user.id,
        email: user.email,
        name: user.name,
        role: user.role,
    }))
}

fn role_change_error(err: RoleChangeError) -> ApiError {
    match err {
        RoleChangeError::NotFound => ApiError::NotFound,
        RoleChangeError::Clerk(err) if err.is_not_found() => ApiError::NotFound,
        RoleChangeError::Clerk(err) => ApiError::Unavailable(err.into()),
        RoleChangeError::Service(err) => err.into(),
    }
}

#[utoipa::path(get, path = "/v1/reps", tag = "team", security(("bearer" = [])), params(RepQuery),
    responses((status = 200, description = "`{items: [Rep], next_cursor: null}`, by name")))]
pub async fn list_reps(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    query: web::Query<RepQuery>,
) -> Result<web::Json<Page<Rep>>, ApiError> {
    let utx = begin(&state, &caller).await?;
    let mut select = utx
        .scope()
        .select::<sales_rep::Entity>()
        .order_by_asc(sales_rep::Column::DisplayName)
        .order_by_asc(sales_rep::Column::Id);
    if let Some(active) = query.active {
        select = select.filter(sales_rep::Column::Active.eq(active));
    }
    let reps = select.all(utx.conn()).await?;
    utx.finish_read().await?;
    Ok(web::Json(Page {
        items: reps.into_iter().map(Rep::from).collect(),
        next_cursor: None,
    }))
}

#[utoipa::path(patch, path = "/v1/reps/{id}", tag = "team", security(("bearer" = [])), request_body = RepPatch,
    responses((status = 200, body = Rep, description = "The rep as changed"),
        (status = 403, body = crate::problem::Problem, description = "Role not allowed"),
        (status = 404, body = crate::problem::Problem, description = "Not found"),
        (status = 422, body = crate::problem::Problem, description = "Invalid input")))]
pub async fn patch_rep(
    state: web::Data<ApiState>,
    caller: Authorized<Leadership>,
    id: web::Path<Uuid>,
    patch: web::Json<RepPatch>,
) -> Result<web::Json<Rep>, ApiError> {
    let patch = patch.into_inner();
    let utx = begin(&state, &caller).await?;
    let mut update = utx
        .scope()
        .update_many::<sales_rep::Entity>()
        .filter(sales_rep::Column::Id.eq(*id))
        .col_expr(
            sales_rep::Column::UpdatedAt,
            Expr::value(chrono::Utc::now()),
        );
    if let Some(name) = patch.name {
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 200 {
            return Err(ApiError::validation("name", "must be 1-200 characters"));
        }
        update = update.col_expr(sales_rep::Column::DisplayName, Expr::value(name));
    }
    if let Some(phone) = patch.phone {
        let phone = PhoneE164::try_from(phone.as_str())?;
        update = update.col_expr(sales_rep::Column::Phone, Expr::value(phone.to_string()));
    }
    if let Some(active) = patch.active {
        update = update.col_expr(sales_rep::Column::Active, Expr::value(active));
    }
    if update.exec(utx.conn()).await?.rows_affected == 0 {
        return Err(ApiError::NotFound);
    }
    let rep = utx
        .scope()
        .find_by_id::<sales_rep::Entity, _>(*id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let event = utx.event(
        IDENTITY_USER_UPDATED,
        serde_json::json!({ "user_id": rep.user_id }),
    );
    if let Ok(user) = UserId::try_from(rep.user_id.as_str()) {
        utx.emit(event.with_user(user));
    } else {
        utx.emit(event);
    }
    utx.commit(&state.ctx).await?;
    Ok(web::Json(Rep::from(rep)))
}
