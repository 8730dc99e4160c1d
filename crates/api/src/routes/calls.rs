//! Calls (SPEC section 13): the list with filters, one call with its transcript, analysis and
//! follow-ups, and the CRM's edits (`booked`, `notes`). A rep sees the calls of the leads
//! assigned to it; the pipeline `status` is derived by the service layer.

use actix_web::web;
use chrono::{DateTime, Utc};
use otto_db::entities::{call, follow_up};
use otto_domain::CallId;
use otto_service::call_views::{self, CallFilters, CallView, Viewer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::followups::FollowUp;
use super::{begin, timestamp, viewer};
use crate::auth::{AnyRole, Authorized, Staff};
use crate::error::ApiError;
use crate::pagination::{Page, PageQuery};
use crate::state::ApiState;

const DIRECTIONS: [&str; 3] = ["inbound", "outbound", "in_person"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::route_list::resource("/v1/calls").get(list_calls))
        .service(
            crate::route_list::resource("/v1/calls/{id}")
                .get(get_call)
                .patch(patch_call),
        );
}

/// A call in lists.
#[derive(Serialize, ToSchema)]
pub struct CallSummary {
    id: Uuid,
    lead_id: Option<Uuid>,
    provider: String,
    provider_call_id: String,
    direction: Option<String>,
    answered: Option<bool>,
    duration_seconds: Option<i32>,
    started_at: Option<String>,
    booked: bool,
    /// `received|transcribing|transcribed|analyzed|failed`.
    status: &'static str,
    has_recording: bool,
    has_transcript: bool,
    booking_intent: Option<Value>,
    sentiment: Option<Value>,
}

impl From<&CallView> for CallSummary {
    fn from(view: &CallView) -> Self {
        let call = &view.call;
        let analysed = |field: &str| call.analysis.as_ref().and_then(|a| a.get(field)).cloned();
        Self {
            id: call.id,
            lead_id: call.lead_id,
            provider: call.provider.clone(),
            provider_call_id: call.provider_call_id.clone(),
            direction: call.direction.clone(),
            answered: call.answered,
            duration_seconds: call.duration_seconds,
            started_at: call.started_at.map(timestamp),
            booked: call.booked,
            status: view.status.as_str(),
            has_recording: call.recording_url.is_some() || call.recording_key.is_some(),
            has_transcript: call.transcript.is_some(),
            booking_intent: analysed("booking_intent"),
            sentiment: analysed("sentiment"),
        }
    }
}

/// One call: the summary's fields and what the pipeline and the CRM hold about it.
#[derive(Serialize, ToSchema)]
pub struct CallDetail {
    #[serde(flatten)]
    summary: CallSummary,
    recording_url: Option<String>,
    /// `{text, segments}`; `segments` is empty until UWC returns them.
    transcript: Option<Value>,
    /// `{summary, sentiment, booking_intent, objections, key_signals}`.
    analysis: Option<Value>,
    notes: Option<String>,
    followups: Vec<FollowUp>,
}

impl CallDetail {
    fn new(view: &CallView, followups: Vec<follow_up::Model>) -> Self {
        let call: &call::Model = &view.call;
        let analysis = call.analysis.as_ref().map(|a| {
            let field = |name: &str| a.get(name).cloned().unwrap_or(Value::Null);
            let list = |name: &str| {
                a.get(name)
                    .cloned()
                    .unwrap_or_else(|| Value::Array(Vec::new()))
            };
            serde_json::json!({
                "summary": field("summary"),
                "sentiment": field("sentiment"),
                "booking_intent": field("booking_intent"),
                "objections": list("objections"),
                "key_signals": list("key_signals"),
            })
        });
        Self {
            summary: CallSummary::from(view),
            recording_url: call.recording_url.clone(),
            transcript: call
                .transcript
                .as_ref()
                .map(|text| serde_json::json!({ "text": text, "segments": [] })),
            analysis,
            notes: call.notes.clone(),
            followups: followups.into_iter().map(FollowUp::from).collect(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct CallQuery {
    lead_id: Option<Uuid>,
    /// `inbound|outbound|in_person`.
    direction: Option<String>,
    answered: Option<bool>,
    booked: Option<bool>,
    /// RFC 3339; calls Otto first heard of at or after this time.
    since: Option<DateTime<Utc>>,
    /// RFC 3339; calls Otto first heard of before this time.
    until: Option<DateTime<Utc>>,
}

impl CallQuery {
    fn filters(self) -> Result<CallFilters, ApiError> {
        if let Some(direction) = &self.direction
            && !DIRECTIONS.contains(&direction.as_str())
        {
            return Err(ApiError::validation(
                "direction",
                format!("must be one of {}", DIRECTIONS.join(", ")),
            ));
        }
        Ok(CallFilters {
            lead_id: self.lead_id,
            direction: self.direction,
            answered: self.answered,
            booked: self.booked,
            since: self.since,
            until: self.until,
        })
    }
}

/// `PATCH /v1/calls/{id}`: absent fields stay; `"notes": null` clears the notes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallPatch {
    booked: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    notes: Option<Option<String>>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

#[utoipa::path(get, path = "/v1/calls", tag = "calls", security(("bearer" = [])), params(PageQuery, CallQuery),
    responses((status = 200, description = "`{items: [CallSummary], next_cursor}`"),
        (status = 422, body = crate::problem::Problem, description = "Invalid filter or cursor")))]
pub async fn list_calls(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    page: web::Query<PageQuery>,
    query: web::Query<CallQuery>,
) -> Result<web::Json<Page<CallSummary>>, ApiError> {
    let limit = page.limit()?;
    let cursor = page.cursor_uuid()?;
    let filters = query.into_inner().filters()?;
    let utx = begin(&state, &caller).await?;
    let views = call_views::list(&utx, &viewer(&caller), &filters, cursor, limit + 1).await?;
    utx.finish_read().await?;
    Ok(web::Json(Page::from_rows(
        views,
        limit,
        |view| view.call.id.to_string(),
        |view| CallSummary::from(&view),
    )))
}

#[utoipa::path(get, path = "/v1/calls/{id}", tag = "calls", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The call")),
    responses((status = 200, body = CallDetail, description = "The call"),
        (status = 404, body = crate::problem::Problem, description = "Not found (or not the caller's)")))]
pub async fn get_call(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    id: web::Path<CallId>,
) -> Result<web::Json<CallDetail>, ApiError> {
    let utx = begin(&state, &caller).await?;
    let found = call_views::get(&utx, &viewer(&caller), *id).await?;
    utx.finish_read().await?;
    let (view, followups) = found.ok_or(ApiError::NotFound)?;
    Ok(web::Json(CallDetail::new(&view, followups)))
}

#[utoipa::path(patch, path = "/v1/calls/{id}", tag = "calls", security(("bearer" = [])), request_body = CallPatch,
    params(("id" = uuid::Uuid, Path, description = "The call")),
    responses((status = 200, body = CallDetail, description = "The call as changed"),
        (status = 403, body = crate::problem::Problem, description = "Role not allowed"),
        (status = 404, body = crate::problem::Problem, description = "Not found"),
        (status = 422, body = crate::problem::Problem, description = "Invalid input")))]
pub async fn patch_call(
    state: web::Data<ApiState>,
    caller: Authorized<Staff>,
    id: web::Path<CallId>,
    patch: web::Json<CallPatch>,
) -> Result<web::Json<CallDetail>, ApiError> {
    let patch = patch.into_inner();
    let notes = match patch.notes {
        Some(Some(text)) if text.len() > 10_000 => {
            return Err(ApiError::validation(
                "notes",
                "must be at most 10,000 characters",
            ));
        }
        Some(Some(text)) if text.trim().is_empty() => Some(None),
        other => other,
    };
    let utx = begin(&state, &caller).await?;
    let Some(view) = call_views::update(&utx, *id, patch.booked, notes).await? else {
        return Err(ApiError::NotFound);
    };
    let (view, followups) = call_views::get(&utx, &Viewer::Company, view.call.id.into())
        .await?
        .ok_or(ApiError::NotFound)?;
    utx.commit(&state.ctx).await?;
    Ok(web::Json(CallDetail::new(&view, followups)))
}
