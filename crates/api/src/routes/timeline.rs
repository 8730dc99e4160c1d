//! A lead's timeline (SPEC section 13): calls, messages, appointments, tasks and follow-ups
//! merged newest first, one cursor across the five kinds. A rep sees the timelines of the leads
//! assigned to it.

use actix_web::web;
use otto_domain::LeadId;
use otto_service::timeline::{self, Cursor, Entry};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{begin, timestamp, viewer};
use crate::auth::{AnyRole, Authorized};
use crate::error::ApiError;
use crate::pagination::{Page, PageQuery};
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::route_list::resource("/v1/leads/{id}/timeline").get(lead_timeline));
}

/// One item of a lead's history.
#[derive(Serialize, ToSchema)]
pub struct TimelineItem {
    /// `call|message|appointment|task|followup`.
    kind: &'static str,
    id: Uuid,
    /// When Otto recorded the item.
    at: String,
    summary: String,
}

impl From<Entry> for TimelineItem {
    fn from(entry: Entry) -> Self {
        Self {
            kind: entry.kind.as_str(),
            id: entry.id,
            at: timestamp(entry.at),
            summary: entry.summary,
        }
    }
}

#[utoipa::path(get, path = "/v1/leads/{id}/timeline", tag = "leads", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The lead"), PageQuery),
    responses((status = 200, description = "`{items: [TimelineItem], next_cursor}`, newest first"),
        (status = 404, body = crate::problem::Problem, description = "No such lead (or not the caller's)"),
        (status = 422, body = crate::problem::Problem, description = "Invalid limit or cursor")))]
pub async fn lead_timeline(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    id: web::Path<LeadId>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<TimelineItem>>, ApiError> {
    let limit = page.limit()?;
    let cursor = page.cursor_decoded(Cursor::decode)?;
    let utx = begin(&state, &caller).await?;
    let entries = timeline::page(&utx, &viewer(&caller), *id, cursor.as_ref(), limit + 1).await?;
    utx.finish_read().await?;
    let entries = entries.ok_or(ApiError::NotFound)?;
    Ok(web::Json(Page::from_rows(
        entries,
        limit,
        |entry| Cursor::after(entry).encode(),
        TimelineItem::from,
    )))
}
