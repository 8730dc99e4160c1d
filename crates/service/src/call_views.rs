//! The CRM's view of calls (SPEC section 13): lists and details with the pipeline's status
//! derived from what the call and its ASR job hold (never stored twice), rep visibility, and the
//! CRM's own edits (`booked`, `notes`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use otto_db::entities::{call, follow_up, shunya_job};
use otto_db::{TenantTxn, shunya_jobs};
use otto_domain::CallId;
use otto_domain::catalog::TELEPHONY_CALL_STATUS;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ExprTrait, Iterable, QueryFilter, QueryOrder, QuerySelect, Select, SelectModel,
    Selector,
};
use serde_json::json;
use uuid::Uuid;

use crate::ServiceError;
pub use crate::visibility::Viewer;

/// Where a call is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineStatus {
    Received,
    Transcribing,
    Transcribed,
    Analyzed,
    Failed,
}

impl PipelineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Transcribing => "transcribing",
            Self::Transcribed => "transcribed",
            Self::Analyzed => "analyzed",
            Self::Failed => "failed",
        }
    }

    /// A stored result wins; otherwise the ASR job says whether transcription runs or failed.
    fn of(call: &call::Model, asr: Option<&shunya_job::Model>) -> Self {
        if call.analysis.is_some() {
            Self::Analyzed
        } else if call.transcript.is_some() {
            Self::Transcribed
        } else {
            match asr.map(|job| job.status.as_str()) {
                Some(shunya_jobs::FAILED) => Self::Failed,
                Some(_) => Self::Transcribing,
                None => Self::Received,
            }
        }
    }
}

/// A call with its derived status.
#[derive(Debug, Clone)]
pub struct CallView {
    pub call: call::Model,
    pub status: PipelineStatus,
}

/// `GET /v1/calls` filters; `since`/`until` bound when Otto first heard of the call.
#[derive(Debug, Clone, Default)]
pub struct CallFilters {
    pub lead_id: Option<Uuid>,
    pub direction: Option<String>,
    pub answered: Option<bool>,
    pub booked: Option<bool>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

fn visible(utx: &TenantTxn, viewer: &Viewer) -> Select<call::Entity> {
    let query = utx.scope().select::<call::Entity>();
    match viewer.lead_ids(utx) {
        None => query,
        Some(assigned) => query.filter(call::Column::LeadId.in_subquery(assigned)),
    }
}

/// Up to `limit` calls newest first, after `cursor` (the last id of the previous page).
///
/// # Errors
/// On database failure.
pub async fn list(
    utx: &TenantTxn,
    viewer: &Viewer,
    filters: &CallFilters,
    cursor: Option<Uuid>,
    limit: u64,
) -> Result<Vec<CallView>, ServiceError> {
    let mut query = visible(utx, viewer)
        .order_by_desc(call::Column::Id)
        .limit(limit);
    if let Some(cursor) = cursor {
        query = query.filter(call::Column::Id.lt(cursor));
    }
    if let Some(lead) = filters.lead_id {
        query = query.filter(call::Column::LeadId.eq(lead));
    }
    if let Some(direction) = &filters.direction {
        query = query.filter(call::Column::Direction.eq(direction.as_str()));
    }
    if let Some(answered) = filters.answered {
        query = query.filter(call::Column::Answered.eq(answered));
    }
    if let Some(booked) = filters.booked {
        query = query.filter(call::Column::Booked.eq(booked));
    }
    if let Some(since) = filters.since {
        query = query.filter(call::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filters.until {
        query = query.filter(call::Column::CreatedAt.lt(until));
    }
    let calls = without_transcript_text(query).all(utx.conn()).await?;
    with_status(utx, calls).await
}

/// The calls of `query` with `transcript` reduced to `""` when there is one: a list says
/// whether a call has a transcript, never what it says, so a page never carries 50 transcripts.
fn without_transcript_text(query: Select<call::Entity>) -> Selector<SelectModel<call::Model>> {
    let presence: Expr = Expr::case(
        Expr::col((call::Entity, call::Column::Transcript)).is_null(),
        Expr::val(Option::<String>::None),
    )
    .finally(Expr::val(""))
    .into();
    query
        .select_only()
        .columns(call::Column::iter().filter(|column| !matches!(column, call::Column::Transcript)))
        .column_as(presence, "transcript")
        .into_model::<call::Model>()
}

/// One call with its follow-ups, if the viewer may see it.
///
/// # Errors
/// On database failure.
pub async fn get(
    utx: &TenantTxn,
    viewer: &Viewer,
    id: CallId,
) -> Result<Option<(CallView, Vec<follow_up::Model>)>, ServiceError> {
    let Some(call) = visible(utx, viewer)
        .filter(call::Column::Id.eq(Uuid::from(id)))
        .one(utx.conn())
        .await?
    else {
        return Ok(None);
    };
    let followups = utx
        .scope()
        .select::<follow_up::Entity>()
        .filter(follow_up::Column::CallId.eq(call.id))
        .order_by_desc(follow_up::Column::Id)
        .all(utx.conn())
        .await?;
    let view = with_status(utx, vec![call]).await?.pop();
    Ok(view.map(|view| (view, followups)))
}

/// The CRM's edits of a call: `booked`, and `notes` (`Some(None)` clears them). Emits
/// `telephony.call.status`. `None` when the call is not the tenant's.
///
/// # Errors
/// On database failure.
pub async fn update(
    utx: &TenantTxn,
    id: CallId,
    booked: Option<bool>,
    notes: Option<Option<String>>,
) -> Result<Option<CallView>, ServiceError> {
    let id = Uuid::from(id);
    let mut update = utx
        .scope()
        .update_many::<call::Entity>()
        .filter(call::Column::Id.eq(id))
        .col_expr(call::Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(booked) = booked {
        update = update.col_expr(call::Column::Booked, Expr::value(booked));
    }
    if let Some(notes) = notes {
        update = update.col_expr(call::Column::Notes, Expr::value(notes));
    }
    if update.exec(utx.conn()).await?.rows_affected == 0 {
        return Ok(None);
    }
    let Some((view, _)) = get(utx, &Viewer::Company, id.into()).await? else {
        return Ok(None);
    };
    let mut event = utx.event(
        TELEPHONY_CALL_STATUS,
        json!({ "call_id": view.call.id, "provider": view.call.provider, "status": view.status.as_str() }),
    );
    if let Some(lead) = view.call.lead_id {
        event = event.with_lead(lead);
    }
    utx.emit(event);
    Ok(Some(view))
}

/// Each call with its status: one query for the ASR jobs of the whole page.
async fn with_status(
    utx: &TenantTxn,
    calls: Vec<call::Model>,
) -> Result<Vec<CallView>, ServiceError> {
    let ids: Vec<Uuid> = calls
        .iter()
        .filter(|c| c.transcript.is_none())
        .map(|c| c.id)
        .collect();
    let jobs: HashMap<Uuid, shunya_job::Model> = if ids.is_empty() {
        HashMap::new()
    } else {
        utx.scope()
            .select::<shunya_job::Entity>()
            .filter(shunya_job::Column::JobType.eq(shunya_jobs::ASR))
            .filter(shunya_job::Column::CallId.is_in(ids))
            .all(utx.conn())
            .await?
            .into_iter()
            .filter_map(|job| job.call_id.map(|call| (call, job)))
            .collect()
    };
    Ok(calls
        .into_iter()
        .map(|call| {
            let status = PipelineStatus::of(&call, jobs.get(&call.id));
            CallView { call, status }
        })
        .collect())
}
