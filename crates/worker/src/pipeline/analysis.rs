//! Step 2: `analysis.run` stores a transcript's objections, sentiment, booking intent and key
//! signals on the call, once (the update only applies while `analysis` is empty).

use async_trait::async_trait;
use chrono::Utc;
use otto_db::begin_for_tenant;
use otto_db::entities::call;
use otto_integrations::uwc::AnalysisRequest;
use otto_runtime::AppContext;
use otto_runtime::jobs::PendingJobs;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::{ANALYSIS_READY, AnalyseCall, DraftFollowup, Pipeline};
use crate::JobError;
use crate::typed::{JobKind, TypedHandler};

pub(super) struct Analyse(pub(super) Pipeline);

#[async_trait]
impl TypedHandler for Analyse {
    type Job = AnalyseCall;

    async fn handle(&self, job: AnalyseCall, ctx: &AppContext) -> Result<(), JobError> {
        let Some(uwc) = self.0.client(self.0.features.asr) else {
            return Ok(());
        };
        let tenant = &job.tenant_id;
        let Some(call) = super::load_call(ctx, tenant, job.call_id).await? else {
            return Ok(());
        };
        let Some(transcript) = call.transcript.clone().filter(|_| call.analysis.is_none()) else {
            return Ok(());
        };
        let analysis = uwc
            .analyze_call(&AnalysisRequest {
                company_id: tenant.to_string(),
                call_id: call.id.to_string(),
                transcript,
            })
            .await
            .map_err(super::uwc_failure)?;
        let stored = serde_json::to_value(&analysis).map_err(|e| JobError::Permanent(e.into()))?;
        let txn = begin_for_tenant(&ctx.db, tenant).await?;
        let changed = call::Entity::update_many()
            .col_expr(call::Column::Analysis, Expr::value(stored))
            .col_expr(call::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(call::Column::Id.eq(call.id))
            .filter(call::Column::CompanyId.eq(tenant.as_str()))
            .filter(call::Column::Analysis.is_null())
            .exec(&txn)
            .await?;
        if changed.rows_affected == 0 {
            // Another run stored it first.
            txn.rollback().await?;
            return Ok(());
        }
        let event = super::call_event(
            ANALYSIS_READY,
            tenant,
            &job.trace_id,
            &call,
            json!({
                "call_id": call.id,
                "sentiment": analysis.sentiment,
                "booking_intent": analysis.booking_intent,
                "objections": analysis.objections,
            }),
        );
        otto_db::outbox::record(&txn, &event).await?;
        let mut next = PendingJobs::default();
        next.add(
            DraftFollowup {
                tenant_id: tenant.clone(),
                call_id: call.id,
                trace_id: job.trace_id.clone(),
            }
            .to_job(),
        );
        next.stage(ctx.queue.as_ref(), &txn)
            .await
            .map_err(|e| JobError::Retryable(e.into()))?;
        txn.commit().await?;
        ctx.outbox.notify();
        next.release(ctx.queue.as_ref()).await;
        Ok(())
    }
}
