//! Step 3: `followups.draft` stores a follow-up draft for an analysed call, once per call and
//! channel (a unique index; a retried or duplicated job inserts nothing).

use async_trait::async_trait;
use chrono::Utc;
use otto_db::begin_for_tenant;
use otto_db::entities::follow_up;
use otto_integrations::uwc::{CallAnalysis, FollowupRequest};
use otto_runtime::AppContext;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use super::{DraftFollowup, FOLLOWUP_DRAFT_READY, Pipeline};
use crate::JobError;
use crate::typed::TypedHandler;

/// Drafts are texts: the channel home-services customers answer.
const CHANNEL: &str = "sms";

pub(super) struct Draft(pub(super) Pipeline);

#[async_trait]
impl TypedHandler for Draft {
    type Job = DraftFollowup;

    async fn handle(&self, job: DraftFollowup, ctx: &AppContext) -> Result<(), JobError> {
        let Some(uwc) = self.0.client(self.0.features.followups) else {
            return Ok(());
        };
        let tenant = &job.tenant_id;
        let Some(call) = super::load_call(ctx, tenant, job.call_id).await? else {
            return Ok(());
        };
        let (Some(transcript), Some(analysis)) = (call.transcript.clone(), call.analysis.clone())
        else {
            return Ok(());
        };
        let exists = follow_up::Entity::find()
            .filter(follow_up::Column::CompanyId.eq(tenant.as_str()))
            .filter(follow_up::Column::CallId.eq(call.id))
            .filter(follow_up::Column::Channel.eq(CHANNEL))
            .one(&ctx.db)
            .await?
            .is_some();
        if exists {
            return Ok(());
        }
        let analysis: CallAnalysis =
            serde_json::from_value(analysis).map_err(|e| JobError::Permanent(e.into()))?;
        let draft = uwc
            .draft_followup(&FollowupRequest {
                company_id: tenant.to_string(),
                call_id: call.id.to_string(),
                transcript,
                analysis,
                channel: CHANNEL.to_owned(),
            })
            .await
            .map_err(super::uwc_failure)?;
        let now = Utc::now();
        let id = Uuid::now_v7();
        let txn = begin_for_tenant(&ctx.db, tenant).await?;
        let inserted = insert_draft(
            &txn,
            follow_up::ActiveModel {
                id: Set(id),
                company_id: Set(tenant.to_string()),
                call_id: Set(Some(call.id)),
                lead_id: Set(call.lead_id),
                channel: Set(CHANNEL.to_owned()),
                draft: Set(draft.body),
                status: Set("draft".to_owned()),
                sent_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            },
        )
        .await?;
        if !inserted {
            txn.rollback().await?;
            return Ok(());
        }
        let event = super::call_event(
            FOLLOWUP_DRAFT_READY,
            tenant,
            &job.trace_id,
            &call,
            json!({ "follow_up_id": id, "call_id": call.id, "channel": CHANNEL }),
        );
        otto_db::outbox::record(&txn, &event).await?;
        txn.commit().await?;
        ctx.outbox.notify();
        Ok(())
    }
}

/// Inserts a draft unless the call already has one on that channel; true when inserted.
///
/// # Errors
/// On database failure.
pub async fn insert_draft<C: sea_orm::ConnectionTrait>(
    conn: &C,
    row: follow_up::ActiveModel,
) -> Result<bool, sea_orm::DbErr> {
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
        .exec_without_returning(conn)
        .await?;
    Ok(inserted == 1)
}
