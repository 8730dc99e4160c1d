//! Follow-ups (SPEC section 13): the list, and a reviewer's edit of a draft (its body, or
//! dismissing it; anything but a draft: 409).

use actix_web::web;
use otto_db::entities::follow_up;
use otto_service::followups::{self, DraftEdit, EditError, FollowupFilters};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{begin, timestamp, viewer};
use crate::auth::{AnyRole, Authorized};
use crate::error::ApiError;
use crate::pagination::{Page, PageQuery};
use crate::state::ApiState;

const STATUSES: [&str; 3] = ["draft", "sent", "dismissed"];
const MAX_BODY: usize = 1600;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::route_list::resource("/v1/followups").get(list_followups))
        .service(crate::route_list::resource("/v1/followups/{id}").patch(patch_followup));
}

/// A follow-up.
#[derive(Serialize, ToSchema)]
pub struct FollowUp {
    id: Uuid,
    call_id: Option<Uuid>,
    lead_id: Option<Uuid>,
    channel: String,
    body: String,
    status: String,
    created_at: String,
    sent_at: Option<String>,
    /// The message that carried it, once sent.
    message_id: Option<Uuid>,
}

impl From<follow_up::Model> for FollowUp {
    fn from(row: follow_up::Model) -> Self {
        Self {
            id: row.id,
            call_id: row.call_id,
            lead_id: row.lead_id,
            channel: row.channel,
            body: row.draft,
            status: row.status,
            created_at: timestamp(row.created_at),
            sent_at: row.sent_at.map(timestamp),
            message_id: row.message_id,
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct FollowupQuery {
    /// `draft|sent|dismissed`.
    status: Option<String>,
    lead_id: Option<Uuid>,
}

/// `{"body"}` or `{"status": "dismissed"}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowupPatch {
    body: Option<String>,
    status: Option<String>,
}

impl FollowupPatch {
    fn edit(self) -> Result<DraftEdit, ApiError> {
        match (self.body, self.status.as_deref()) {
            (Some(body), None) => {
                let body = body.trim().to_owned();
                if body.is_empty() || body.chars().count() > MAX_BODY {
                    return Err(ApiError::validation("body", "must be 1-1600 characters"));
                }
                Ok(DraftEdit::Body(body))
            }
            (None, Some("dismissed")) => Ok(DraftEdit::Dismiss),
            (None, Some(_)) => Err(ApiError::validation(
                "status",
                "can only be set to dismissed",
            )),
            _ => Err(ApiError::validation(
                "body",
                "send either body or status: dismissed",
            )),
        }
    }
}

#[utoipa::path(get, path = "/v1/followups", tag = "followups", security(("bearer" = [])), params(PageQuery, FollowupQuery),
    responses((status = 200, description = "`{items: [FollowUp], next_cursor}`"),
        (status = 422, body = crate::problem::Problem, description = "Invalid filter or cursor")))]
pub async fn list_followups(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    page: web::Query<PageQuery>,
    query: web::Query<FollowupQuery>,
) -> Result<web::Json<Page<FollowUp>>, ApiError> {
    let limit = page.limit()?;
    let cursor = page.cursor_uuid()?;
    let query = query.into_inner();
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::validation(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ));
    }
    let filters = FollowupFilters {
        status: query.status,
        lead_id: query.lead_id,
    };
    let utx = begin(&state, &caller).await?;
    let rows = followups::list(&utx, &viewer(&caller), &filters, cursor, limit + 1).await?;
    utx.finish_read().await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |row| row.id.to_string(),
        FollowUp::from,
    )))
}

#[utoipa::path(patch, path = "/v1/followups/{id}", tag = "followups", security(("bearer" = [])), request_body = FollowupPatch,
    responses((status = 200, body = FollowUp, description = "The draft as changed"),
        (status = 404, body = crate::problem::Problem, description = "Not found (or not the caller's)"),
        (status = 409, body = crate::problem::Problem, description = "Not a draft any more"),
        (status = 422, body = crate::problem::Problem, description = "Invalid input")))]
pub async fn patch_followup(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    id: web::Path<Uuid>,
    patch: web::Json<FollowupPatch>,
) -> Result<web::Json<FollowUp>, ApiError> {
    let edit = patch.into_inner().edit()?;
    let utx = begin(&state, &caller).await?;
    let edited = match followups::edit(&utx, &viewer(&caller), *id, edit).await {
        Ok(row) => row,
        Err(EditError::NotFound) => return Err(ApiError::NotFound),
        Err(EditError::NotDraft(status)) => {
            return Err(ApiError::Conflict(format!(
                "The follow-up is {status}; only drafts can be changed."
            )));
        }
        Err(EditError::Service(err)) => return Err(err.into()),
    };
    utx.commit(&state.ctx).await?;
    Ok(web::Json(FollowUp::from(edited)))
}
