//! `process-pending-transcriptions`: finds calls left between two steps of the pipeline (the
//! job was lost with a crash between commit and enqueue, dead-lettered, or never enqueued because
//! UWC was off) and enqueues the missing step. The steps are idempotent, so a call found while
//! its job is merely waiting costs one extra no-op run.

use async_trait::async_trait;
use chrono::{Duration, Utc};
use otto_db::entities::{call, follow_up, shunya_job};
use otto_domain::jobs::{
    AnalyseCall, DraftFollowup, JobKind, NewJob, ProcessPendingTranscriptions, TranscribeCall,
};
use otto_domain::{TenantId, TraceId};
use otto_runtime::AppContext;
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{ColumnTrait, Condition, EntityTrait, ExprTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::Pipeline;
use crate::JobError;
use crate::typed::Perform;

/// Older calls are not revived automatically (`otto-worker dead retry` is there for them).
const HORIZON_DAYS: i64 = 7;
const BATCH: u64 = 200;

#[async_trait]
impl Perform for ProcessPendingTranscriptions {
    type State = Pipeline;

    async fn perform(self, pipeline: &Pipeline, ctx: &AppContext) -> Result<(), JobError> {
        let features = pipeline.features;
        let now = Utc::now();
        // A call is left alone for a while after its last change: its own job is probably on its way.
        let settled = now - pipeline.sweep_grace;
        let horizon = now - Duration::days(HORIZON_DAYS);
        let recent = Condition::all()
            .add(call::Column::UpdatedAt.lte(settled))
            .add(call::Column::UpdatedAt.gte(horizon));
        let mut jobs: Vec<NewJob> = Vec::new();
        if features.asr {
            let untranscribed = recent
                .clone()
                .add(
                    Condition::any()
                        .add(call::Column::RecordingUrl.is_not_null())
                        .add(call::Column::RecordingKey.is_not_null()),
                )
                .add(call::Column::Transcript.is_null())
                .add(Expr::exists(asr_job_of_call()).not());
            jobs.extend(
                pending(ctx, untranscribed, |t, c, tr| {
                    TranscribeCall {
                        tenant_id: t,
                        call_id: c.into(),
                        trace_id: tr,
                    }
                    .to_job()
                })
                .await?,
            );
            let unanalysed = recent
                .clone()
                .add(call::Column::Transcript.is_not_null())
                .add(call::Column::Analysis.is_null());
            jobs.extend(
                pending(ctx, unanalysed, |t, c, tr| {
                    AnalyseCall {
                        tenant_id: t,
                        call_id: c.into(),
                        trace_id: tr,
                    }
                    .to_job()
                })
                .await?,
            );
        }
        if features.followups {
            let undrafted = recent
                .add(call::Column::Analysis.is_not_null())
                .add(Expr::exists(draft_of_call()).not());
            jobs.extend(
                pending(ctx, undrafted, |t, c, tr| {
                    DraftFollowup {
                        tenant_id: t,
                        call_id: c.into(),
                        trace_id: tr,
                    }
                    .to_job()
                })
                .await?,
            );
        }
        let count = jobs.len();
        for job in jobs {
            ctx.queue
                .push(job)
                .await
                .map_err(|e| JobError::Retryable(e.into()))?;
        }
        if count > 0 {
            tracing::info!(
                enqueued = count,
                "re-enqueued pipeline steps of pending calls"
            );
        }
        Ok(())
    }
}

/// Calls matching `condition`, each turned into the job of its missing step.
async fn pending(
    ctx: &AppContext,
    condition: Condition,
    job: impl Fn(TenantId, Uuid, TraceId) -> Result<NewJob, serde_json::Error>,
) -> Result<Vec<NewJob>, JobError> {
    let rows: Vec<(Uuid, String)> = call::Entity::find()
        .select_only()
        .column(call::Column::Id)
        .column(call::Column::CompanyId)
        .filter(condition)
        .limit(BATCH)
        .into_tuple()
        .all(&ctx.db)
        .await?;
    rows.into_iter()
        .filter_map(|(id, company)| {
            let tenant = TenantId::try_from(company.as_str()).ok()?;
            Some(job(tenant, id, TraceId::generate()))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| JobError::Permanent(e.into()))
}

fn asr_job_of_call() -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(shunya_job::Entity)
        .and_where(
            Expr::col((shunya_job::Entity, shunya_job::Column::CallId))
                .equals((call::Entity, call::Column::Id)),
        )
        .and_where(
            Expr::col((shunya_job::Entity, shunya_job::Column::JobType))
                .eq(otto_db::shunya_jobs::ASR),
        )
        .to_owned()
}

fn draft_of_call() -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(follow_up::Entity)
        .and_where(
            Expr::col((follow_up::Entity, follow_up::Column::CallId))
                .equals((call::Entity, call::Column::Id)),
        )
        .to_owned()
}
