//! Follow-up drafts: one per call and channel, whether UWC's callback or the drafting job
//! brings it first.

use chrono::Utc;
use otto_db::TenantTxn;
use otto_db::entities::{call, follow_up};
use otto_domain::catalog::{FOLLOWUP_DRAFT_READY, FOLLOWUP_UPDATED};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use serde_json::json;
use uuid::Uuid;

use crate::ServiceError;
use crate::calls::call_event;
use crate::visibility::Viewer;

pub const DRAFT: &str = "draft";
pub const DISMISSED: &str = "dismissed";
pub const SENT: &str = "sent";

/// Whether `call` already has a draft on `channel`.
///
/// # Errors
/// On database failure.
pub async fn has_draft(
    utx: &TenantTxn,
    call: &call::Model,
    channel: &str,
) -> Result<bool, ServiceError> {
    Ok(utx
        .scope()
        .select::<follow_up::Entity>()
        .filter(follow_up::Column::CallId.eq(call.id))
        .filter(follow_up::Column::Channel.eq(channel))
        .one(utx.conn())
        .await?
        .is_some())
}

/// Stores `draft` for `call` on `channel` unless the call has one there already (a unique
/// index), and emits `followup.draft.ready`. The new draft's id, or `None`.
///
/// # Errors
/// On database failure.
pub async fn store_draft(
    utx: &TenantTxn,
    call: &call::Model,
    channel: &str,
    draft: String,
) -> Result<Option<Uuid>, ServiceError> {
    let now = Utc::now();
    let id = Uuid::now_v7();
    let row = follow_up::ActiveModel {
        id: Set(id),
        company_id: Set(utx.tenant().to_string()),
        call_id: Set(Some(call.id)),
        lead_id: Set(call.lead_id),
        channel: Set(channel.to_owned()),
        draft: Set(draft),
        status: Set(DRAFT.to_owned()),
        sent_at: Set(None),
        message_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let inserted = follow_up::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                follow_up::Column::CompanyId,
                follow_up::Column::CallId,
                follow_up::Column::Channel,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(utx.conn())
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    utx.emit(call_event(
        FOLLOWUP_DRAFT_READY,
        utx.tenant(),
        utx.trace(),
        call,
        json!({ "follow_up_id": id, "call_id": call.id, "channel": channel }),
    ));
    Ok(Some(id))
}

/// `GET /v1/followups` filters.
#[derive(Debug, Clone, Default)]
pub struct FollowupFilters {
    pub status: Option<String>,
    pub lead_id: Option<Uuid>,
}

/// Up to `limit` follow-ups the viewer may see, newest first, after `cursor`.
///
/// # Errors
/// On database failure.
pub async fn list(
    utx: &TenantTxn,
    viewer: &Viewer,
    filters: &FollowupFilters,
    cursor: Option<Uuid>,
    limit: u64,
) -> Result<Vec<follow_up::Model>, ServiceError> {
    let mut query = visible(utx, viewer)
        .order_by_desc(follow_up::Column::Id)
        .limit(limit);
    if let Some(cursor) = cursor {
        query = query.filter(follow_up::Column::Id.lt(cursor));
    }
    if let Some(status) = &filters.status {
        query = query.filter(follow_up::Column::Status.eq(status.as_str()));
    }
    if let Some(lead) = filters.lead_id {
        query = query.filter(follow_up::Column::LeadId.eq(lead));
    }
    Ok(query.all(utx.conn()).await?)
}

/// What a reviewer may change on a draft.
#[derive(Debug, Clone)]
pub enum DraftEdit {
    Body(String),
    Dismiss,
}

/// Why a draft could not be edited.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no such follow-up")]
    NotFound,
    #[error("the follow-up is {0}, not a draft")]
    NotDraft(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<sea_orm::DbErr> for EditError {
    fn from(err: sea_orm::DbErr) -> Self {
        EditError::Service(err.into())
    }
}

/// Edits a draft the viewer may see; the check and the write are one statement (a draft sent or
/// dismissed meanwhile is not changed). Emits `followup.updated`.
///
/// # Errors
/// `NotFound`, `NotDraft`, or a database failure.
pub async fn edit(
    utx: &TenantTxn,
    viewer: &Viewer,
    id: Uuid,
    edit: DraftEdit,
) -> Result<follow_up::Model, EditError> {
    let mut update = utx
        .scope()
        .update_many::<follow_up::Entity>()
        .filter(follow_up::Column::Id.eq(id))
        .filter(follow_up::Column::Status.eq(DRAFT))
        .col_expr(follow_up::Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(assigned) = viewer.lead_ids(utx) {
        update = update.filter(follow_up::Column::LeadId.in_subquery(assigned));
    }
    update = match &edit {
        DraftEdit::Body(body) => {
            update.col_expr(follow_up::Column::Draft, Expr::value(body.clone()))
        }
        DraftEdit::Dismiss => update.col_expr(follow_up::Column::Status, Expr::value(DISMISSED)),
    };
    let changed = update.exec(utx.conn()).await?.rows_affected;
    let current = visible(utx, viewer)
        .filter(follow_up::Column::Id.eq(id))
        .one(utx.conn())
        .await?
        .ok_or(EditError::NotFound)?;
    if changed == 0 {
        return Err(EditError::NotDraft(current.status));
    }
    let mut event = utx.event(
        FOLLOWUP_UPDATED,
        json!({ "follow_up_id": current.id, "call_id": current.call_id, "status": current.status }),
    );
    if let Some(lead) = current.lead_id {
        event = event.with_lead(lead);
    }
    utx.emit(event);
    Ok(current)
}

fn visible(utx: &TenantTxn, viewer: &Viewer) -> Select<follow_up::Entity> {
    let query = utx.scope().select::<follow_up::Entity>();
    match viewer.lead_ids(utx) {
        None => query,
        Some(assigned) => query.filter(follow_up::Column::LeadId.in_subquery(assigned)),
    }
}
