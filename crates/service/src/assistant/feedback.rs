//! `POST /v1/feedback`: a visitor's rating of one conversation of the company.

use chrono::Utc;
use otto_db::TenantTxn;
use otto_db::entities::assistant_feedback;
use otto_domain::{TenantId, TraceId};
use otto_runtime::AppContext;
use sea_orm::{ActiveValue::Set, EntityTrait};
use uuid::Uuid;

use super::conversation::Conversation;
use super::engine::AssistantError;
use crate::ServiceError;

#[derive(Debug, Clone)]
pub struct Feedback {
    pub session_id: String,
    pub rating: i32,
    pub comment: Option<String>,
}

/// Whether conversation `id` is one of `tenant`'s (and still remembered).
///
/// # Errors
/// When the conversation store fails.
pub async fn owns(ctx: &AppContext, tenant: &TenantId, id: &str) -> Result<bool, AssistantError> {
    let Some(raw) = ctx.conversations.get(id).await? else {
        return Ok(false);
    };
    Ok(serde_json::from_str::<Conversation>(&raw).is_ok_and(|c| c.tenant_id == *tenant))
}

/// Records `feedback` for a conversation of `tenant`.
///
/// # Errors
/// `ServiceError::Invalid` (rating, comment), `NotFound`, store and database failures.
pub async fn record(
    ctx: &AppContext,
    tenant: &TenantId,
    feedback: Feedback,
) -> Result<(), AssistantError> {
    if !(1..=5).contains(&feedback.rating) {
        return Err(ServiceError::invalid("rating", "must be 1-5").into());
    }
    if feedback
        .comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > 2_000)
    {
        return Err(ServiceError::invalid("comment", "must be at most 2,000 characters").into());
    }
    if !owns(ctx, tenant, &feedback.session_id).await? {
        return Err(AssistantError::NotFound);
    }
    let utx = TenantTxn::begin(&ctx.db, tenant, TraceId::generate()).await?;
    let now = Utc::now();
    assistant_feedback::Entity::insert(assistant_feedback::ActiveModel {
        id: Set(Uuid::now_v7()),
        company_id: Set(tenant.to_string()),
        session_id: Set(feedback.session_id),
        rating: Set(feedback.rating),
        comment: Set(feedback.comment),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(utx.conn())
    .await?;
    utx.commit(ctx).await?;
    Ok(())
}
