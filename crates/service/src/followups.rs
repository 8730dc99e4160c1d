//! Follow-up drafts: one per call and channel, whether UWC's callback or the drafting job
//! brings it first.

use chrono::Utc;
use otto_db::TenantTxn;
use otto_db::entities::{call, follow_up};
use otto_domain::catalog::FOLLOWUP_DRAFT_READY;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::ServiceError;
use crate::calls::call_event;

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
        status: Set("draft".to_owned()),
        sent_at: Set(None),
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
