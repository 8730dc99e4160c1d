//! Appointments (SPEC section 13): the list (by `starts_at`), booking, one appointment with its
//! `ETag`, optimistic `PATCH` (`If-Match`: 412 stale, 428 missing) and assignment to a rep. The
//! booking rules live in `otto_service::appointments`; a rep sees its own appointments.

use actix_web::http::StatusCode;
use actix_web::http::header::{ETAG, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use otto_db::entities::appointment;
use otto_service::appointments::{
    self, AppointmentChanges, AppointmentError, AppointmentFilters, Booking, ListCursor,
    NewAppointment,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{begin, etag, if_match_version, timestamp, viewer};
use crate::auth::{AnyRole, Authorized, Staff};
use crate::error::ApiError;
use crate::pagination::{Page, PageQuery};
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        crate::route_list::resource("/v1/appointments")
            .get(list_appointments)
            .post(create_appointment),
    )
    .service(
        crate::route_list::resource("/v1/appointments/{id}")
            .get(get_appointment)
            .patch(patch_appointment),
    )
    .service(crate::route_list::resource("/v1/appointments/{id}/assign").post(assign_appointment));
}

#[derive(Serialize, ToSchema)]
pub struct Appointment {
    id: Uuid,
    lead_id: Uuid,
    rep_id: Option<Uuid>,
    call_id: Option<Uuid>,
    starts_at: String,
    ends_at: String,
    title: Option<String>,
    address: Option<String>,
    notes: Option<String>,
    /// `scheduled|completed|cancelled|no_show`.
    status: String,
    external_id: Option<String>,
    google_event_id: Option<String>,
    version: i32,
}

impl From<appointment::Model> for Appointment {
    fn from(row: appointment::Model) -> Self {
        Self {
            id: row.id,
            lead_id: row.lead_id,
            rep_id: row.rep_id,
            call_id: row.call_id,
            starts_at: timestamp(row.scheduled_start),
            ends_at: timestamp(row.scheduled_end),
            title: row.title,
            address: row.address,
            notes: row.notes,
            status: row.status,
            external_id: row.external_id,
            google_event_id: row.google_event_id,
            version: row.version,
        }
    }
}

/// `POST /v1/appointments`. Times are RFC 3339, or naive (`2026-12-01T09:00`) in the company's
/// time zone.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentRequest {
    lead_id: Uuid,
    starts_at: String,
    ends_at: String,
    title: Option<String>,
    address: Option<String>,
    notes: Option<String>,
    rep_id: Option<Uuid>,
    call_id: Option<Uuid>,
    /// Unique per company: the same value again answers 200 with the first appointment.
    external_id: Option<String>,
}

/// `PATCH /v1/appointments/{id}`: absent fields stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentPatch {
    starts_at: Option<String>,
    ends_at: Option<String>,
    title: Option<String>,
    address: Option<String>,
    notes: Option<String>,
    /// `scheduled|completed|cancelled|no_show`.
    status: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// A `sales_reps` id (`GET /v1/reps`).
    rep_id: Uuid,
}

#[derive(Deserialize, IntoParams)]
pub struct AppointmentQuery {
    /// `starts_at` at or after (RFC 3339, or naive in the company's zone).
    from: Option<String>,
    /// `starts_at` before.
    to: Option<String>,
    rep_id: Option<Uuid>,
    lead_id: Option<Uuid>,
    status: Option<String>,
}

const MAX_TEXT: usize = 2_000;

/// Texts of a request: at most 2,000 characters each.
fn checked_text(field: &'static str, value: &Option<String>) -> Result<(), ApiError> {
    match value {
        Some(text) if text.chars().count() > MAX_TEXT => Err(ApiError::validation(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        )),
        _ => Ok(()),
    }
}

fn api_error(err: AppointmentError) -> ApiError {
    match err {
        AppointmentError::NotFound => ApiError::NotFound,
        AppointmentError::Conflict => ApiError::AppointmentConflict,
        AppointmentError::Stale => ApiError::PreconditionFailed,
        AppointmentError::Service(err) => err.into(),
    }
}

fn with_etag(status: StatusCode, row: appointment::Model) -> HttpResponse {
    let location = format!("/v1/appointments/{}", row.id);
    HttpResponse::build(status)
        .insert_header((ETAG, etag(row.version)))
        .insert_header((LOCATION, location))
        .json(Appointment::from(row))
}

#[utoipa::path(get, path = "/v1/appointments", tag = "appointments", security(("bearer" = [])), params(PageQuery, AppointmentQuery),
    responses((status = 200, description = "`{items: [Appointment], next_cursor}`, by `starts_at` ascending"),
        (status = 422, body = crate::problem::Problem, description = "Invalid filter or cursor")))]
pub async fn list_appointments(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    page: web::Query<PageQuery>,
    query: web::Query<AppointmentQuery>,
) -> Result<web::Json<Page<Appointment>>, ApiError> {
    let limit = page.limit()?;
    let cursor = page.cursor_decoded(ListCursor::decode)?;
    let query = query.into_inner();
    let filters = AppointmentFilters {
        from: query.from,
        to: query.to,
        rep_id: query.rep_id,
        lead_id: query.lead_id,
        status: query.status,
    };
    let utx = begin(&state, &caller).await?;
    let rows = appointments::list(&utx, &viewer(&caller), &filters, cursor.as_ref(), limit + 1)
        .await
        .map_err(api_error)?;
    utx.finish_read().await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |row| ListCursor::after(row).encode(),
        Appointment::from,
    )))
}

#[utoipa::path(post, path = "/v1/appointments", tag = "appointments", security(("bearer" = [])), request_body = AppointmentRequest,
    responses((status = 201, body = Appointment, description = "Booked (`ETag`, `Location`); the lead is `booked`"),
        (status = 200, body = Appointment, description = "The appointment this `external_id` already names"),
        (status = 404, body = crate::problem::Problem, description = "No such lead"),
        (status = 409, body = crate::problem::Problem, description = "`appointment-conflict`: the rep is booked then"),
        (status = 422, body = crate::problem::Problem, description = "Invalid times, rep or call")))]
pub async fn create_appointment(
    state: web::Data<ApiState>,
    caller: Authorized<Staff>,
    body: web::Json<AppointmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    checked_text("title", &body.title)?;
    checked_text("address", &body.address)?;
    checked_text("notes", &body.notes)?;
    let new = NewAppointment {
        lead_id: body.lead_id,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        title: body.title,
        address: body.address,
        notes: body.notes,
        rep_id: body.rep_id,
        call_id: body.call_id,
        external_id: body.external_id,
        company_wide: false,
    };
    let utx = begin(&state, &caller).await?;
    match appointments::book(&state.ctx, utx, new)
        .await
        .map_err(api_error)?
    {
        Booking::Created(row) => Ok(with_etag(StatusCode::CREATED, row)),
        Booking::Existing(row) => Ok(with_etag(StatusCode::OK, row)),
    }
}

#[utoipa::path(get, path = "/v1/appointments/{id}", tag = "appointments", security(("bearer" = [])),
    responses((status = 200, body = Appointment, description = "The appointment (`ETag`)"),
        (status = 404, body = crate::problem::Problem, description = "Not found (or not the caller's)")))]
pub async fn get_appointment(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let utx = begin(&state, &caller).await?;
    let row = appointments::get(&utx, &viewer(&caller), *id)
        .await
        .map_err(api_error)?;
    utx.finish_read().await?;
    Ok(with_etag(StatusCode::OK, row.ok_or(ApiError::NotFound)?))
}

#[utoipa::path(patch, path = "/v1/appointments/{id}", tag = "appointments", security(("bearer" = [])), request_body = AppointmentPatch,
    params(("If-Match" = String, Header, description = "The appointment's ETag, e.g. \"3\"")),
    responses((status = 200, body = Appointment, description = "Changed (new `ETag`)"),
        (status = 404, body = crate::problem::Problem, description = "Not found"),
        (status = 409, body = crate::problem::Problem, description = "`appointment-conflict`"),
        (status = 412, body = crate::problem::Problem, description = "Stale version"),
        (status = 428, body = crate::problem::Problem, description = "If-Match required")))]
pub async fn patch_appointment(
    state: web::Data<ApiState>,
    caller: Authorized<Staff>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<AppointmentPatch>,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match_version(&req)?;
    let body = body.into_inner();
    checked_text("title", &body.title)?;
    checked_text("address", &body.address)?;
    checked_text("notes", &body.notes)?;
    let changes = AppointmentChanges {
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        title: body.title,
        address: body.address,
        notes: body.notes,
        status: body.status,
    };
    let utx = begin(&state, &caller).await?;
    let row = appointments::update(&state.ctx, utx, *id, expected, changes)
        .await
        .map_err(api_error)?;
    Ok(with_etag(StatusCode::OK, row))
}

#[utoipa::path(post, path = "/v1/appointments/{id}/assign", tag = "appointments", security(("bearer" = [])), request_body = AssignRequest,
    responses((status = 200, body = Appointment, description = "Assigned; `appointment.assigned` reaches the rep's tasks channel"),
        (status = 404, body = crate::problem::Problem, description = "Not found"),
        (status = 409, body = crate::problem::Problem, description = "`appointment-conflict`"),
        (status = 422, body = crate::problem::Problem, description = "Not an active rep")))]
pub async fn assign_appointment(
    state: web::Data<ApiState>,
    caller: Authorized<Staff>,
    id: web::Path<Uuid>,
    body: web::Json<AssignRequest>,
) -> Result<HttpResponse, ApiError> {
    let utx = begin(&state, &caller).await?;
    let row = appointments::assign(&state.ctx, utx, *id, body.rep_id)
        .await
        .map_err(api_error)?;
    Ok(with_etag(StatusCode::OK, row))
}
