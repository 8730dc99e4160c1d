//! UWC/Shunya callbacks: `POST /webhooks/uwc/{asr/complete,rag/indexed,training/status,
//! analysis/complete,followup/draft}` and the legacy `POST /api/v1/shunya/webhook`. A callback
//! completes its `shunya_jobs` row once: a second arrival of the same output (webhook after
//! polling, or a retry) matches `processed_output_hash` and changes nothing.

use actix_web::{HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use chrono::Utc;
use otto_db::TenantTxn;
use otto_db::entities::{call, shunya_job};
use otto_integrations::uwc::AsrOutput;
use otto_service::documents::mark_indexed;
use otto_service::followups::store_draft;
use otto_service::training::record_status;
use otto_service::transcripts::{fail_transcription, store_analysis, store_transcript};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

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
    async fn apply(&self, ctx: &DeliveryContext<'_>) -> Result<(), ApiError> {
        let utx = ctx.utx;
        let status = text_of(self.body.get("status")).unwrap_or_else(|| "completed".to_owned());
        if self.event == "rag/indexed" {
            // Documents are matched by their id (or UWC's job id), not by a shunya job.
            let document =
                text_of(self.body.get("document_id")).and_then(|id| Uuid::parse_str(&id).ok());
            let succeeded = !matches!(status.as_str(), "failed" | "error");
            if let Some(row) = mark_indexed(utx, document, &self.job_id, succeeded).await? {
                tracing::info!(document_id = %row.id, status = %row.status, "document indexed by UWC");
            }
            return Ok(());
        }
        if self.event == "training/status" {
            if let Some(rep) = record_status(utx, &self.job_id, &status).await? {
                tracing::info!(rep_id = %rep.id, status = ?rep.training_status, "rep training status from UWC");
            }
            return Ok(());
        }
        let job = utx
            .scope()
            .select::<shunya_job::Entity>()
            .filter(shunya_job::Column::ShunyaJobId.eq(self.job_id.as_str()))
            .one(utx.conn())
            .await?;
        let Some(job) = job else {
            tracing::warn!(job_id = %self.job_id, event = %self.event, "UWC callback matches no shunya job; stored as unmatched");
            let now = Utc::now();
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
            utx.scope().insert(row).await?;
            return Ok(());
        };
        match (self.event.as_str(), job.call_id) {
            ("asr/complete", Some(_)) => self.apply_transcript(utx, &job).await,
            _ => self.apply_generic(utx, &job, status).await,
        }
    }
}

impl UwcCallback {
    /// The transcript goes through the service layer's `store_transcript`, like a polled one:
    /// only the first of the two arrivals changes anything, and it enqueues the analysis.
    async fn apply_transcript(
        &self,
        utx: &TenantTxn,
        job: &shunya_job::Model,
    ) -> Result<(), ApiError> {
        if text_of(self.body.get("status")).is_some_and(|s| s == "failed") {
            let reason = text_of(self.body.get("error"))
                .unwrap_or_else(|| "UWC reported the job failed".to_owned());
            fail_transcription(utx, job, &reason).await?;
            return Ok(());
        }
        let output: AsrOutput = serde_json::from_value(self.body.clone())
            .map_err(|e| ApiError::validation("transcript", e.to_string()))?;
        store_transcript(utx, job, &output).await?;
        Ok(())
    }

    /// Other callbacks: the job row is completed once per distinct body, and an analysis or a
    /// follow-up draft is stored through the same service operations as the pipeline's jobs
    /// (with the same events).
    async fn apply_generic(
        &self,
        utx: &TenantTxn,
        job: &shunya_job::Model,
        status: String,
    ) -> Result<(), ApiError> {
        if job.processed_output_hash.as_deref() == Some(self.output_hash.as_str()) {
            return Ok(());
        }
        utx.scope()
            .update_many::<shunya_job::Entity>()
            .col_expr(shunya_job::Column::Status, Expr::value(status))
            .col_expr(
                shunya_job::Column::ProcessedOutputHash,
                Expr::value(self.output_hash.clone()),
            )
            .col_expr(shunya_job::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(shunya_job::Column::Id.eq(job.id))
            .exec(utx.conn())
            .await?;
        let Some(call_id) = job.call_id else {
            return Ok(());
        };
        let Some(call) = utx.scope().find_by_id::<call::Entity, _>(call_id).await? else {
            return Ok(());
        };
        match self.event.as_str() {
            "analysis/complete" => {
                let analysis = self.body.get("analysis").cloned().unwrap_or(Value::Null);
                store_analysis(utx, &call, analysis).await?;
            }
            "followup/draft" => {
                let channel = text_of(self.body.get("channel")).unwrap_or_else(|| "sms".to_owned());
                let draft = text_of(self.body.get("draft")).unwrap_or_default();
                store_draft(utx, &call, &channel, draft).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
