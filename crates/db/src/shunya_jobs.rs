//! `shunya_jobs`: the UWC/Shunya jobs Otto submitted, and their results. A result is applied
//! once: completing a job is a conditional update on `processed_output_hash`, so of a webhook and
//! a poll bringing the same output, only the first changes anything.

use chrono::{DateTime, Utc};
use otto_domain::TenantId;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, ExprTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entities::shunya_job::{self, Column, Entity, Model};

pub const ASR: &str = "asr";
pub const SUBMITTED: &str = "submitted";
pub const PROCESSING: &str = "processing";
pub const COMPLETED: &str = "completed";
pub const FAILED: &str = "failed";

/// A job just accepted by UWC.
pub struct Submitted<'a> {
    pub tenant: &'a TenantId,
    pub shunya_job_id: &'a str,
    pub job_type: &'a str,
    pub call_id: Option<Uuid>,
    /// When polling should first ask about it.
    pub poll_at: DateTime<Utc>,
}

/// Records a submitted job; false when that job id was already recorded for the tenant
/// (UWC answered a repeated submission with the same job).
///
/// # Errors
/// On database failure.
pub async fn record_submitted<C: ConnectionTrait>(
    conn: &C,
    job: Submitted<'_>,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    let row = shunya_job::ActiveModel {
        id: Set(Uuid::now_v7()),
        company_id: Set(job.tenant.to_string()),
        shunya_job_id: Set(job.shunya_job_id.to_owned()),
        job_type: Set(job.job_type.to_owned()),
        status: Set(SUBMITTED.to_owned()),
        call_id: Set(job.call_id),
        attempts: Set(0),
        next_retry_at: Set(Some(job.poll_at)),
        processed_output_hash: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let inserted = Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::CompanyId, Column::ShunyaJobId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(inserted == 1)
}

/// The tenant's job of `job_type` for `call_id`, if one was submitted.
///
/// # Errors
/// On database failure.
pub async fn for_call<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    call_id: Uuid,
    job_type: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::CompanyId.eq(tenant.as_str()))
        .filter(Column::CallId.eq(call_id))
        .filter(Column::JobType.eq(job_type))
        .one(conn)
        .await
}

/// The tenant's job `shunya_job_id`.
///
/// # Errors
/// On database failure.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    shunya_job_id: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::CompanyId.eq(tenant.as_str()))
        .filter(Column::ShunyaJobId.eq(shunya_job_id))
        .one(conn)
        .await
}

/// Unfinished jobs of every tenant whose next poll is due, oldest due first.
///
/// # Errors
/// On database failure.
pub async fn due_for_poll<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Status.is_in([SUBMITTED, PROCESSING]))
        .filter(
            Condition::any()
                .add(Column::NextRetryAt.is_null())
                .add(Column::NextRetryAt.lte(now)),
        )
        .order_by_asc(Column::NextRetryAt)
        .limit(limit)
        .all(conn)
        .await
}

/// Marks `job` completed with an output hashing to `output_hash`, unless that output was
/// already applied. True when this call applied it (the caller then stores the output).
///
/// # Errors
/// On database failure.
pub async fn complete_once<C: ConnectionTrait>(
    conn: &C,
    job: &Model,
    output_hash: &str,
) -> Result<bool, DbErr> {
    let changed = Entity::update_many()
        .col_expr(Column::Status, Expr::value(COMPLETED))
        .col_expr(Column::ProcessedOutputHash, Expr::value(output_hash))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(job.id))
        .filter(
            Condition::any()
                .add(Column::ProcessedOutputHash.is_null())
                .add(Column::ProcessedOutputHash.ne(output_hash)),
        )
        .exec(conn)
        .await?;
    Ok(changed.rows_affected == 1)
}

/// Marks an unfinished `job` failed; true when this call did.
///
/// # Errors
/// On database failure.
pub async fn fail_once<C: ConnectionTrait>(conn: &C, job: &Model) -> Result<bool, DbErr> {
    let changed = Entity::update_many()
        .col_expr(Column::Status, Expr::value(FAILED))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(job.id))
        .filter(Column::Status.is_in([SUBMITTED, PROCESSING]))
        .exec(conn)
        .await?;
    Ok(changed.rows_affected == 1)
}

/// Counts a poll that found `job` unfinished and sets when to ask again.
///
/// # Errors
/// On database failure.
pub async fn poll_again<C: ConnectionTrait>(
    conn: &C,
    job: &Model,
    status: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::NextRetryAt, Expr::value(at))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(job.id))
        .filter(Column::Status.is_in([SUBMITTED, PROCESSING]))
        .exec(conn)
        .await?;
    Ok(())
}
