//! Leads (SPEC sections 9 and 12): cursor-paginated list with filters, create, read, optimistic
//! `PATCH` (`If-Match` with the `ETag` version: 412 when stale, 428 when missing), delete.
//! Leadership and csr work every lead of the company; a rep sees the leads assigned to them.

use actix_web::http::header::{ETAG, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use otto_db::entities::lead;
use otto_db::{TenantScope, TenantTxn};
use otto_domain::catalog::LEAD_UPDATED;
use otto_domain::{LeadId, PhoneE164, Role};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, ExprTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{begin, etag, if_match_version, timestamp};
use crate::auth::{AnyRole, AuthUser, Authorized, RoleSet, Staff, refuse};
use crate::error::ApiError;
use crate::pagination::{Page, PageQuery};
use crate::state::ApiState;

const STATUSES: [&str; 6] = ["new", "contacted", "qualified", "booked", "won", "lost"];

#[derive(Serialize, ToSchema)]
pub struct Lead {
    id: Uuid,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    source: Option<String>,
    status: String,
    assigned_user_id: Option<String>,
    address: Option<String>,
    /// The model's property facts (`property_type`, `year_built`, `roof_type`, `square_feet`,
    /// `estimated_value`, `confidence`) once `property_status` is `ready`.
    #[schema(value_type = Option<Object>)]
    property: Option<serde_json::Value>,
    /// `pending`, `ready` or `failed` (null: never asked).
    property_status: Option<String>,
    version: i32,
    created_at: String,
    updated_at: String,
}

impl From<lead::Model> for Lead {
    fn from(row: lead::Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            phone: row.phone,
            email: row.email,
            source: row.source,
            status: row.status,
            assigned_user_id: row.assigned_user_id,
            address: row.address,
            property: row.property,
            property_status: row.property_status,
            version: row.version,
            created_at: timestamp(row.created_at),
            updated_at: timestamp(row.updated_at),
        }
    }
}

/// A lead's writable fields: all optional on create (status defaults to `new`), and on `PATCH`
/// absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadFields {
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    source: Option<String>,
    status: Option<String>,
    assigned_user_id: Option<String>,
    /// The property's address; a new one asks the model for property facts (when configured).
    address: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct LeadFilters {
    status: Option<String>,
    source: Option<String>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        crate::route_list::resource("/v1/leads")
            .get(list_leads)
            .post(create_lead),
    )
    .service(
        crate::route_list::resource("/v1/leads/{id}")
            .get(get_lead)
            .patch(patch_lead)
            .delete(delete_lead),
    );
}

/// Property facts are asked for only when a model is configured (`LLM_BASE_URL`).
fn property_model_configured(state: &ApiState) -> bool {
    state.ctx.config.integrations.llm.base_url.is_some()
}

/// The leads `caller` may see: all of the tenant's, or only their own for a rep.
fn visible(
    scope: &TenantScope<'_, impl ConnectionTrait>,
    caller: &AuthUser,
) -> Select<lead::Entity> {
    let query = scope.select::<lead::Entity>();
    match caller.role {
        Role::Rep => query.filter(lead::Column::AssignedUserId.eq(caller.user_id.as_str())),
        Role::Leadership | Role::Csr => query,
    }
}

#[utoipa::path(get, path = "/v1/leads", tag = "leads", security(("bearer" = [])), params(PageQuery, LeadFilters),
    responses((status = 200, description = "`{items: [Lead], next_cursor}`"), (status = 422, body = crate::problem::Problem, description = "Invalid input (field errors)")))]
pub async fn list_leads(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    page: web::Query<PageQuery>,
    filters: web::Query<LeadFilters>,
) -> Result<web::Json<Page<Lead>>, ApiError> {
    let limit = page.limit()?;
    let utx = begin(&state, &caller).await?;
    let mut query = visible(&utx.scope(), &caller)
        .order_by_desc(lead::Column::Id)
        .limit(limit + 1);
    if let Some(cursor) = page.cursor_uuid()? {
        query = query.filter(lead::Column::Id.lt(cursor));
    }
    if let Some(status) = &filters.status {
        query = query.filter(lead::Column::Status.eq(status.as_str()));
    }
    if let Some(source) = &filters.source {
        query = query.filter(lead::Column::Source.eq(source.as_str()));
    }
    let rows = query.all(utx.conn()).await?;
    utx.finish_read().await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |row| row.id.to_string(),
        Lead::from,
    )))
}

#[utoipa::path(post, path = "/v1/leads", tag = "leads", security(("bearer" = [])), request_body = LeadFields,
    responses((status = 201, body = Lead, description = "Created"), (status = 409, body = crate::problem::Problem, description = "Already exists"), (status = 422, body = crate::problem::Problem, description = "Invalid input (field errors)")))]
pub async fn create_lead(
    state: web::Data<ApiState>,
    caller: Authorized<Staff>,
    body: web::Json<LeadFields>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let now = Utc::now();
    let address = clean_text("address", body.address)?;
    let row = lead::ActiveModel {
        address: Set(address.clone()),
        id: Set(Uuid::now_v7()),
        name: Set(clean_text("name", body.name)?),
        phone: Set(body
            .phone
            .map(|p| PhoneE164::try_from(p.as_str()).map(String::from))
            .transpose()?),
        email: Set(body.email.map(email).transpose()?),
        source: Set(clean_text("source", body.source)?),
        status: Set(body
            .status
            .map(status)
            .transpose()?
            .unwrap_or_else(|| "new".to_owned())),
        assigned_user_id: Set(clean_text("assigned_user_id", body.assigned_user_id)?),
        sms_opted_out: Set(false),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let utx = begin(&state, &caller).await?;
    let mut created = utx.scope().insert(row).await?;
    if address.is_some() && property_model_configured(&state) {
        otto_service::property::request(&utx, created.id).await?;
        created.property_status = Some(otto_service::property::PENDING.to_owned());
    }
    record_change(&utx, &caller, &created, "created");
    utx.commit(&state.ctx).await?;
    Ok(HttpResponse::Created()
        .insert_header((ETAG, etag(created.version)))
        .insert_header((LOCATION, format!("/v1/leads/{}", created.id)))
        .json(Lead::from(created)))
}

#[utoipa::path(get, path = "/v1/leads/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The lead")),
    responses((status = 200, body = Lead, description = "OK"), (status = 404, body = crate::problem::Problem, description = "Not found (or another company's)")))]
pub async fn get_lead(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    id: web::Path<LeadId>,
) -> Result<HttpResponse, ApiError> {
    let utx = begin(&state, &caller).await?;
    let row = visible(&utx.scope(), &caller)
        .filter(lead::Column::Id.eq(Uuid::from(*id)))
        .one(utx.conn())
        .await?
        .ok_or(ApiError::NotFound)?;
    utx.finish_read().await?;
    Ok(HttpResponse::Ok()
        .insert_header((ETAG, etag(row.version)))
        .json(Lead::from(row)))
}

#[utoipa::path(patch, path = "/v1/leads/{id}", tag = "leads", security(("bearer" = [])), request_body = LeadFields,
    params(("id" = uuid::Uuid, Path, description = "The lead"), ("If-Match" = String, Header, description = "The lead's ETag, e.g. \"3\"")),
    responses((status = 200, body = Lead, description = "OK"), (status = 404, body = crate::problem::Problem, description = "Not found (or another company's)"),
        (status = 412, body = crate::problem::Problem, description = "Stale version: fetch again and retry with its ETag"), (status = 428, body = crate::problem::Problem, description = "If-Match required")))]
pub async fn patch_lead(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    req: HttpRequest,
    id: web::Path<LeadId>,
    body: web::Json<LeadFields>,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match_version(&req)?;
    let body = body.into_inner();
    if body.assigned_user_id.is_some() && !Staff::ROLES.contains(&caller.role) {
        // Reassigning is a staff decision: refused like a route, audit row included.
        return Err(refuse(&state, &req, &caller, Staff::ROLES).await);
    }
    let new_address = body.address.as_ref().is_some_and(|a| !a.trim().is_empty());
    let changes = validated_changes(body)?;
    let utx = begin(&state, &caller).await?;
    let scope = utx.scope();
    // The version check and the write are one statement: of two PATCHes carrying the same
    // If-Match, exactly one matches.
    let mut update = scope
        .update_many::<lead::Entity>()
        .filter(lead::Column::Id.eq(Uuid::from(*id)))
        .filter(lead::Column::Version.eq(expected))
        .col_expr(
            lead::Column::Version,
            Expr::col(lead::Column::Version).add(1),
        )
        .col_expr(lead::Column::UpdatedAt, Expr::value(Utc::now()));
    if caller.role == Role::Rep {
        update = update.filter(lead::Column::AssignedUserId.eq(caller.user_id.as_str()));
    }
    for (column, value) in changes {
        update = update.col_expr(column, value);
    }
    let changed = update.exec(utx.conn()).await?.rows_affected;
    let current = visible(&scope, &caller)
        .filter(lead::Column::Id.eq(Uuid::from(*id)))
        .one(utx.conn())
        .await?;
    let Some(current) = current else {
        return Err(ApiError::NotFound);
    };
    if changed == 0 {
        return Err(ApiError::PreconditionFailed);
    }
    let mut current = current;
    if new_address && property_model_configured(&state) {
        otto_service::property::request(&utx, current.id).await?;
        current.property_status = Some(otto_service::property::PENDING.to_owned());
    }
    record_change(&utx, &caller, &current, "updated");
    utx.commit(&state.ctx).await?;
    Ok(HttpResponse::Ok()
        .insert_header((ETAG, etag(current.version)))
        .json(Lead::from(current)))
}

#[utoipa::path(delete, path = "/v1/leads/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The lead")),
    responses((status = 204, description = "Deleted"), (status = 404, body = crate::problem::Problem, description = "Not found (or another company's)")))]
pub async fn delete_lead(
    state: web::Data<ApiState>,
    caller: Authorized<Staff>,
    id: web::Path<LeadId>,
) -> Result<HttpResponse, ApiError> {
    // The DELETE comes first (RETURNING the row for the event): a transaction that reads before
    // it writes cannot take SQLite's write lock if another writer committed in between.
    let utx = begin(&state, &caller).await?;
    let deleted = utx
        .scope()
        .delete_many::<lead::Entity>()
        .filter(lead::Column::Id.eq(Uuid::from(*id)))
        .exec_with_returning(utx.conn())
        .await?;
    let Some(row) = deleted.into_iter().next() else {
        return Err(ApiError::NotFound);
    };
    record_change(&utx, &caller, &row, "deleted");
    utx.commit(&state.ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The column writes a PATCH body asks for, each value validated.
fn validated_changes(body: LeadFields) -> Result<Vec<(lead::Column, Expr)>, ApiError> {
    let mut changes = Vec::new();
    if let Some(name) = clean_text("name", body.name)? {
        changes.push((lead::Column::Name, Expr::value(name)));
    }
    if let Some(phone) = body.phone {
        changes.push((
            lead::Column::Phone,
            Expr::value(String::from(PhoneE164::try_from(phone.as_str())?)),
        ));
    }
    if let Some(address) = body.email {
        changes.push((lead::Column::Email, Expr::value(email(address)?)));
    }
    if let Some(source) = clean_text("source", body.source)? {
        changes.push((lead::Column::Source, Expr::value(source)));
    }
    if let Some(new_status) = body.status {
        changes.push((lead::Column::Status, Expr::value(status(new_status)?)));
    }
    if let Some(assignee) = clean_text("assigned_user_id", body.assigned_user_id)? {
        changes.push((lead::Column::AssignedUserId, Expr::value(assignee)));
    }
    if let Some(address) = clean_text("address", body.address)? {
        changes.push((lead::Column::Address, Expr::value(address)));
    }
    Ok(changes)
}

/// `lead.updated` for `row` (`change`: created, updated or deleted), by the caller.
fn record_change(utx: &TenantTxn, caller: &AuthUser, row: &lead::Model, change: &str) {
    utx.emit(
        utx.event(
            LEAD_UPDATED,
            serde_json::json!({ "lead_id": row.id, "change": change, "status": row.status, "version": row.version }),
        )
        .with_user(caller.user_id.clone())
        .with_lead(row.id),
    );
}

fn clean_text(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if v.len() > 200 => Err(ApiError::validation(
            field,
            "must be at most 200 characters",
        )),
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn email(value: String) -> Result<String, ApiError> {
    let value = value.trim().to_ascii_lowercase();
    let valid = value.len() <= 254
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if valid {
        Ok(value)
    } else {
        Err(ApiError::validation("email", "must be an e-mail address"))
    }
}

fn status(value: String) -> Result<String, ApiError> {
    if STATUSES.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(ApiError::validation(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ))
    }
}
