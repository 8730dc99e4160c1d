//! `GET|PATCH /v1/companies/{id}` and `POST /v1/owner/lockdown` (SPEC section 12). A caller
//! only ever sees their own company; any other id is 404.

use actix_web::web;
use chrono::Utc;
use otto_db::TenantScope;
use otto_db::entities::{company, twilio_number};
use otto_domain::PhoneE164;
use sea_orm::{ActiveValue::Set, ConnectionTrait, QueryOrder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{AnyRole, Authorized, Leadership};
use crate::error::ApiError;
use crate::state::ApiState;

#[derive(Serialize, ToSchema)]
pub struct Company {
    id: String,
    name: String,
    time_zone: String,
    callrail_company_id: Option<String>,
    twilio_numbers: Vec<String>,
    lockdown_mode: bool,
    /// Missed calls get a Bland callback besides their task (SPEC section 17).
    missed_call_callbacks: bool,
    /// `HH:MM` in `time_zone`: no callback is dialed from start to end (may wrap midnight).
    quiet_hours_start: Option<String>,
    quiet_hours_end: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyPatch {
    name: Option<String>,
    time_zone: Option<String>,
    /// `null` clears the mapping.
    #[serde(default, with = "double_option")]
    callrail_company_id: Option<Option<String>>,
    /// Replaces the company's numbers.
    twilio_numbers: Option<Vec<String>>,
    missed_call_callbacks: Option<bool>,
    /// `HH:MM`; `null` clears it.
    #[serde(default, with = "double_option")]
    quiet_hours_start: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    quiet_hours_end: Option<Option<String>>,
}

/// A quiet-hours bound: `HH:MM`.
fn quiet_time(field: &'static str, raw: String) -> Result<String, ApiError> {
    chrono::NaiveTime::parse_from_str(raw.trim(), "%H:%M")
        .map(|t| t.format("%H:%M").to_string())
        .map_err(|_| ApiError::validation(field, "must be HH:MM"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockdownRequest {
    enabled: bool,
}

#[utoipa::path(get, path = "/v1/companies/{id}", tag = "companies", security(("bearer" = [])),
    responses((status = 200, body = Company, description = "OK"), (status = 404, body = crate::problem::Problem, description = "Not found (or another company's)")))]
pub async fn get_company(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    id: web::Path<String>,
) -> Result<web::Json<Company>, ApiError> {
    ensure_own_company(&caller, &id)?;
    let utx = super::begin(&state, &caller).await?;
    let company = load(utx.conn(), &caller).await?;
    utx.finish_read().await?;
    Ok(web::Json(company))
}

#[utoipa::path(patch, path = "/v1/companies/{id}", tag = "companies", security(("bearer" = [])), request_body = CompanyPatch,
    responses((status = 200, body = Company, description = "OK"), (status = 403, body = crate::problem::Problem, description = "Role not allowed"), (status = 404, body = crate::problem::Problem, description = "Not found (or another company's)")))]
pub async fn patch_company(
    state: web::Data<ApiState>,
    caller: Authorized<Leadership>,
    id: web::Path<String>,
    patch: web::Json<CompanyPatch>,
) -> Result<web::Json<Company>, ApiError> {
    ensure_own_company(&caller, &id)?;
    let patch = patch.into_inner();
    let numbers = patch
        .twilio_numbers
        .map(|numbers| {
            numbers
                .iter()
                .map(|n| PhoneE164::try_from(n.as_str()))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let mut changes = company::ActiveModel {
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(name) = patch.name {
        changes.name = Set(non_empty("name", name)?);
    }
    if let Some(zone) = patch.time_zone {
        changes.time_zone = Set(time_zone(zone)?);
    }
    if let Some(enabled) = patch.missed_call_callbacks {
        changes.missed_call_callbacks = Set(enabled);
    }
    if let Some(start) = patch.quiet_hours_start {
        changes.quiet_hours_start = Set(start
            .map(|t| quiet_time("quiet_hours_start", t))
            .transpose()?);
    }
    if let Some(end) = patch.quiet_hours_end {
        changes.quiet_hours_end = Set(end.map(|t| quiet_time("quiet_hours_end", t)).transpose()?);
    }
    if let Some(callrail) = patch.callrail_company_id {
        changes.callrail_company_id = Set(callrail.filter(|c| !c.trim().is_empty()));
    }
    let utx = super::begin(&state, &caller).await?;
    let scope = utx.scope();
    scope
        .update_by_id::<company::Entity, _, _>(caller.tenant_id.to_string(), changes)
        .await?;
    if let Some(numbers) = numbers {
        scope
            .delete_many::<twilio_number::Entity>()
            .exec(utx.conn())
            .await?;
        for number in numbers {
            let now = Utc::now();
            let row = twilio_number::ActiveModel {
                phone_e164: Set(number.to_string()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            };
            // A number already mapped to another company violates the primary key: 409.
            scope.insert(row).await?;
        }
    }
    let company = load(utx.conn(), &caller).await?;
    utx.commit(&state.ctx).await?;
    Ok(web::Json(company))
}

#[utoipa::path(post, path = "/v1/owner/lockdown", tag = "companies", security(("bearer" = [])), request_body = LockdownRequest,
    responses((status = 200, body = Company, description = "OK"), (status = 403, body = crate::problem::Problem, description = "Role not allowed")))]
pub async fn lockdown(
    state: web::Data<ApiState>,
    caller: Authorized<Leadership>,
    request: web::Json<LockdownRequest>,
) -> Result<web::Json<Company>, ApiError> {
    let changes = company::ActiveModel {
        lockdown_mode: Set(request.enabled),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let utx = super::begin(&state, &caller).await?;
    utx.scope()
        .update_by_id::<company::Entity, _, _>(caller.tenant_id.to_string(), changes)
        .await?;
    let company = load(utx.conn(), &caller).await?;
    utx.commit(&state.ctx).await?;
    state.assistant.forget(&caller.tenant_id);
    tracing::warn!(tenant_id = %caller.tenant_id, user_id = %caller.user_id, enabled = request.enabled, "lockdown toggled");
    Ok(web::Json(company))
}

fn ensure_own_company(caller: &crate::auth::AuthUser, id: &str) -> Result<(), ApiError> {
    if caller.tenant_id.as_str() == id {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

async fn load(
    db: &impl ConnectionTrait,
    caller: &crate::auth::AuthUser,
) -> Result<Company, ApiError> {
    let scope = TenantScope::new(db, caller.tenant_id.clone());
    let row = scope
        .find_by_id::<company::Entity, _>(caller.tenant_id.to_string())
        .await?
        .ok_or(ApiError::NotFound)?;
    let numbers = scope
        .select::<twilio_number::Entity>()
        .order_by_asc(twilio_number::Column::PhoneE164)
        .all(db)
        .await?;
    Ok(Company {
        id: row.id,
        name: row.name,
        time_zone: row.time_zone,
        callrail_company_id: row.callrail_company_id,
        twilio_numbers: numbers.into_iter().map(|n| n.phone_e164).collect(),
        lockdown_mode: row.lockdown_mode,
        missed_call_callbacks: row.missed_call_callbacks,
        quiet_hours_start: row.quiet_hours_start,
        quiet_hours_end: row.quiet_hours_end,
    })
}

fn non_empty(field: &'static str, value: String) -> Result<String, ApiError> {
    let value = value.trim().to_owned();
    if value.is_empty() || value.len() > 200 {
        return Err(ApiError::validation(field, "must be 1-200 characters"));
    }
    Ok(value)
}

/// `UTC` or an IANA `Area/Location` name.
fn time_zone(value: String) -> Result<String, ApiError> {
    let ok = value == "UTC"
        || value.split_once('/').is_some_and(|(area, place)| {
            !area.is_empty()
                && !place.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
        });
    if ok {
        Ok(value)
    } else {
        Err(ApiError::validation(
            "time_zone",
            "must be an IANA time zone such as America/Denver",
        ))
    }
}

/// Tells "absent" (`None`) from "null" (`Some(None)`) in a PATCH body.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        crate::route_list::resource("/v1/companies/{id}")
            .get(get_company)
            .patch(patch_company),
    )
    .service(crate::route_list::resource("/v1/owner/lockdown").post(lockdown));
}
