//! Rep training (SPEC section 14): leadership asks UWC to train a rep's voice/style model from
//! the rep's analysed calls (`ENABLE_UWC_TRAINING`). The request marks the rep `queued` and
//! enqueues `training.submit`; the job sends the call ids to `submit_training_job` and keeps
//! UWC's job id; UWC's `training/status` callback sets the status (`completed` stamps
//! `trained_at`) and emits `training.status`. `GET /v1/reps/{id}` shows it.

use std::sync::Arc;

use chrono::Utc;
use otto_db::TenantTxn;
use otto_db::entities::{call, lead, sales_rep};
use otto_domain::catalog::TRAINING_STATUS;
use otto_domain::jobs::TrainRep;
use otto_integrations::uwc::{TrainingRequest, UwcClient, UwcError, UwcSettings};
use otto_runtime::AppContext;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;
use uuid::Uuid;

use crate::ServiceError;

pub const QUEUED: &str = "queued";
pub const SUBMITTED: &str = "submitted";
pub const COMPLETED: &str = "completed";
pub const FAILED: &str = "failed";
/// The most recent analysed calls a model learns from.
const MAX_CALLS: u64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("not found")]
    NotFound,
    #[error("rep training is not available (UWC is not configured or ENABLE_UWC_TRAINING is off)")]
    Disabled,
    #[error(transparent)]
    Uwc(#[from] UwcError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<sea_orm::DbErr> for TrainingError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Service(err.into())
    }
}

/// The UWC client of `config` when training is configured and on.
pub fn training_client(config: &otto_runtime::Config) -> Option<Arc<UwcClient>> {
    if !config.integrations.uwc.enabled().training {
        return None;
    }
    UwcClient::new(UwcSettings::from_config(config)?)
        .ok()
        .map(Arc::new)
}

/// Marks the rep `queued` and enqueues its training; `enabled` is whether training is on.
///
/// # Errors
/// `Disabled`, `NotFound` (no such rep in the tenant).
pub async fn request(
    utx: &TenantTxn,
    rep_id: Uuid,
    enabled: bool,
) -> Result<sales_rep::Model, TrainingError> {
    if !enabled {
        return Err(TrainingError::Disabled);
    }
    let changed = set_status(utx, sales_rep::Column::Id.eq(rep_id), QUEUED, None).await?;
    if !changed {
        return Err(TrainingError::NotFound);
    }
    utx.enqueue(&TrainRep {
        tenant_id: utx.tenant().clone(),
        rep_id,
        trace_id: utx.trace().clone(),
    })
    .map_err(ServiceError::from)?;
    utx.scope()
        .find_by_id::<sales_rep::Entity, _>(rep_id)
        .await?
        .ok_or(TrainingError::NotFound)
}

/// The `training.submit` job: the rep's analysed calls to UWC, UWC's job id kept.
///
/// # Errors
/// UWC failures (retried), database failures.
pub async fn submit(
    ctx: &AppContext,
    uwc: &UwcClient,
    job: &TrainRep,
) -> Result<(), TrainingError> {
    let utx = TenantTxn::begin(&ctx.db, &job.tenant_id, job.trace_id.clone()).await?;
    let Some(rep) = utx
        .scope()
        .find_by_id::<sales_rep::Entity, _>(job.rep_id)
        .await?
    else {
        utx.rollback().await?;
        return Ok(());
    };
    let leads_of_rep = Query::select()
        .column(lead::Column::Id)
        .from(lead::Entity)
        .and_where(lead::Column::AssignedUserId.eq(rep.user_id.as_str()))
        .to_owned();
    let calls: Vec<Uuid> = utx
        .scope()
        .select::<call::Entity>()
        .select_only()
        .column(call::Column::Id)
        .filter(call::Column::Analysis.is_not_null())
        .filter(call::Column::LeadId.in_subquery(leads_of_rep))
        .order_by_desc(call::Column::Id)
        .limit(MAX_CALLS)
        .into_tuple()
        .all(utx.conn())
        .await?;
    utx.rollback().await?;
    let callback_url = ctx.config.http.public_base_url.as_ref().map(|base| {
        format!(
            "{}/webhooks/uwc/training/status",
            base.trim_end_matches('/')
        )
    });
    let accepted = uwc
        .submit_training_job(&TrainingRequest {
            company_id: job.tenant_id.to_string(),
            kind: "rep_style".to_owned(),
            rep_id: Some(rep.user_id.clone()),
            call_ids: calls.iter().map(Uuid::to_string).collect(),
            callback_url,
        })
        .await?;
    let utx = TenantTxn::begin(&ctx.db, &job.tenant_id, job.trace_id.clone()).await?;
    set_status(
        &utx,
        sales_rep::Column::Id.eq(rep.id),
        SUBMITTED,
        Some(accepted.job_id),
    )
    .await?;
    emit(&utx, job.rep_id, &rep.user_id, SUBMITTED);
    utx.commit(ctx).await.map_err(ServiceError::from)?;
    Ok(())
}

/// UWC's `training/status` callback: the rep whose job it is takes the status, once.
///
/// # Errors
/// On database failure.
pub async fn record_status(
    utx: &TenantTxn,
    uwc_job_id: &str,
    status: &str,
) -> Result<Option<sales_rep::Model>, ServiceError> {
    let status = match status {
        "completed" | "succeeded" | "ready" => COMPLETED,
        "failed" | "error" => FAILED,
        _ => SUBMITTED,
    };
    let target = sales_rep::Column::TrainingJobId.eq(uwc_job_id);
    if !set_status(utx, target.clone(), status, None).await? {
        return Ok(None);
    }
    let rep = utx
        .scope()
        .select::<sales_rep::Entity>()
        .filter(target)
        .one(utx.conn())
        .await?;
    if let Some(rep) = &rep {
        emit(utx, rep.id, &rep.user_id, status);
    }
    Ok(rep)
}

/// Sets the status (and the UWC job id when given) where it differs; whether a row changed.
async fn set_status(
    utx: &TenantTxn,
    target: sea_orm::sea_query::SimpleExpr,
    status: &str,
    job_id: Option<String>,
) -> Result<bool, sea_orm::DbErr> {
    let now = Utc::now();
    let mut update = utx
        .scope()
        .update_many::<sales_rep::Entity>()
        .col_expr(sales_rep::Column::TrainingStatus, Expr::value(status))
        .col_expr(sales_rep::Column::UpdatedAt, Expr::value(now))
        .filter(target);
    if let Some(job_id) = job_id {
        update = update.col_expr(sales_rep::Column::TrainingJobId, Expr::value(job_id));
    }
    if status == COMPLETED {
        update = update
            .col_expr(sales_rep::Column::TrainedAt, Expr::value(now))
            .filter(
                sales_rep::Column::TrainingStatus
                    .is_null()
                    .or(sales_rep::Column::TrainingStatus.ne(COMPLETED)),
            );
    }
    Ok(update.exec(utx.conn()).await?.rows_affected > 0)
}

fn emit(utx: &TenantTxn, rep_id: Uuid, user_id: &str, status: &str) {
    utx.emit(utx.event(
        TRAINING_STATUS,
        json!({ "rep_id": rep_id, "user_id": user_id, "status": status }),
    ));
}
