//! UWC/Shunya callbacks: `POST /webhooks/uwc/{asr/complete,rag/indexed,training/status,
//! analysis/complete,followup/draft}` and the legacy `POST /api/v1/shunya/webhook`. A callback
//! completes its `shunya_jobs` row once: a second arrival of the same output (webhook after
//! polling, or a retry) matches `processed_output_hash` and changes nothing.

use actix_web::{HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use chrono::Utc;
use otto_db::entities::{call, follow_up, shunya_job};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use otto_integrations::uwc::AsrOutput;
use otto_worker::pipeline::{
    count_asr_minutes, fail_transcription, insert_draft, store_transcript,
};

use super::pipeline::{DeliveryContext, Effects, Provider, deliver};
use super::{json_body, signature, tenants, text_of};
use crate::error::ApiError;
use crate::state::ApiState;

pub const EVENTS: [&str; 5] = [
    "asr/complete",
    "rag/indexed",
    "training/status",
    "analysis/complete",
    "followup/draft",
];

struct UwcCallback {
    event: String,
    job_id: String,
    body: Value,
    output_hash: String,
}

/// `event` is the path's event, or for the legacy route the body's `event` field.
pub async fn receive(
    state: web::Data<ApiState>,
    req: HttpRequest,
    event: Option<String>,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let secret = state
        .ctx
        .config
        .webhooks
        .uwc_hmac
        .as_ref()
        .ok_or_else(|| super::refused(signature::SignatureError::NotConfigured))?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    signature::uwc(
        secret.expose(),
        header("x-uwc-timestamp"),
        header("x-uwc-signature"),
        &raw,
        Utc::now().timestamp(),
    )
    .map_err(super::refused)?;
    let body = json_body(&raw)?;
    let event = event
        .or_else(|| text_of(body.get("event")))
        .unwrap_or_else(|| "callback".to_owned());
    let job_id =
        text_of(body.get("job_id")).ok_or_else(|| ApiError::validation("job_id", "is required"))?;
    let company = text_of(body.get("company_id"))
        .ok_or_else(|| ApiError::validation("company_id", "is required"))?;
    let tenant = tenants::known_company(&state.ctx.db, &company).await?;
    let external_id = format!("{job_id}:{event}");
    let output_hash = signature::sha256_hex(&raw);
    let callback = UwcCallback {
        event,
        job_id,
        body,
        output_hash,
    };
    let outcome = deliver(&state, Provider::Uwc, &external_id, tenant, &callback).await?;
    Ok(outcome.json(Provider::Uwc))
}

#[async_trait(?Send)]
impl Effects for UwcCallback {
    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        ctx: &DeliveryContext<'_>,
    ) -> Result<(), ApiError> {
        let now = Utc::now();
        let status = text_of(self.body.get("status")).unwrap_or_else(|| "completed".to_owned());
        let job = shunya_job::Entity::find()
            .filter(shunya_job::Column::CompanyId.eq(ctx.tenant.as_str()))
            .filter(shunya_job::Column::ShunyaJobId.eq(self.job_id.as_str()))
            .one(txn)
            .await?;
        let Some(job) = job else {
            tracing::warn!(job_id = %self.job_id, event = %self.event, "UWC callback matches no shunya job; stored as unmatched");
            let row = shunya_job::ActiveModel {
                id: Set(Uuid::now_v7()),
                company_id: Set(ctx.tenant.to_string()),
                shunya_job_id: Set(self.job_id.clone()),
                job_type: Set(self.event.clone()),
                status: Set(status),
                call_id: Set(None),
                attempts: Set(0),
                next_retry_at: Set(None),
                processed_output_hash: Set(Some(self.output_hash.clone())),
                created_at: Set(now),
                updated_at: Set(now),
            };
            shunya_job::Entity::insert(row)
                .exec_without_returning(txn)
                .await?;
            return Ok(());
        };
        match (self.event.as_str(), job.call_id) {
            ("asr/complete", Some(_)) => self.apply_transcript(txn, ctx, &job).await,
            _ => self.apply_generic(txn, ctx, &job, status).await,
        }
    }
}

impl UwcCallback {
    /// The transcript goes through the pipeline's `store_transcript`, like a polled one: only
    /// the first of the two arrivals changes anything, and it enqueues the analysis.
    async fn apply_transcript(
        &self,
        txn: &DatabaseTransaction,
        ctx: &DeliveryContext<'_>,
        job: &shunya_job::Model,
    ) -> Result<(), ApiError> {
        if text_of(self.body.get("status")).is_some_and(|s| s == "failed") {
            let reason = text_of(self.body.get("error"))
                .unwrap_or_else(|| "UWC reported the job failed".to_owned());
            if let Some(event) =
                fail_transcription(txn, &ctx.tenant, job, &reason, &ctx.trace).await?
            {
                ctx.emit(event);
            }
            return Ok(());
        }
        let output: AsrOutput = serde_json::from_value(self.body.clone())
            .map_err(|e| ApiError::validation("transcript", e.to_string()))?;
        if let Some(stored) = store_transcript(txn, &ctx.tenant, job, &output, &ctx.trace).await? {
            for event in stored.events {
                ctx.emit(event);
            }
            ctx.enqueue_all(stored.jobs);
            let minutes = stored.minutes;
            ctx.after_commit(move || count_asr_minutes(minutes));
        }
        Ok(())
    }

    /// Other callbacks: the job row is completed once per distinct body.
    async fn apply_generic(
        &self,
        txn: &DatabaseTransaction,
        ctx: &DeliveryContext<'_>,
        job: &shunya_job::Model,
        status: String,
    ) -> Result<(), ApiError> {
        if job.processed_output_hash.as_deref() == Some(self.output_hash.as_str()) {
            return Ok(());
        }
        shunya_job::Entity::update_many()
            .col_expr(shunya_job::Column::Status, Expr::value(status))
            .col_expr(
                shunya_job::Column::ProcessedOutputHash,
                Expr::value(self.output_hash.clone()),
            )
            .col_expr(shunya_job::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(shunya_job::Column::Id.eq(job.id))
            .exec(txn)
            .await?;
        if let Some(call_id) = job.call_id {
            self.persist_output(txn, ctx, call_id).await?;
        }
        Ok(())
    }

    async fn persist_output(
        &self,
        txn: &DatabaseTransaction,
        ctx: &DeliveryContext<'_>,
        call_id: Uuid,
    ) -> Result<(), ApiError> {
        let update = call::Entity::update_many()
            .col_expr(call::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(call::Column::Id.eq(call_id))
            .filter(call::Column::CompanyId.eq(ctx.tenant.as_str()));
        match self.event.as_str() {
            "analysis/complete" => {
                let analysis = self.body.get("analysis").cloned().unwrap_or(Value::Null);
                update
                    .col_expr(call::Column::Analysis, Expr::value(analysis))
                    .exec(txn)
                    .await?;
            }
            "followup/draft" => {
                let now = Utc::now();
                let row = follow_up::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    company_id: Set(ctx.tenant.to_string()),
                    call_id: Set(Some(call_id)),
                    lead_id: Set(None),
                    channel: Set(
                        text_of(self.body.get("channel")).unwrap_or_else(|| "sms".to_owned())
                    ),
                    draft: Set(text_of(self.body.get("draft")).unwrap_or_default()),
                    status: Set("draft".to_owned()),
                    sent_at: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                };
                insert_draft(txn, row).await?;
            }
            _ => {}
        }
        ctx.emit(ctx.event(
            "worker.task.finished",
            json!({ "name": format!("uwc.{}", self.event), "call_id": call_id }),
        ));
        Ok(())
    }
}
