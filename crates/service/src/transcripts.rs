//! The call pipeline's results, applied once whichever way they arrive (UWC webhook, polling, a
//! job): a transcript, a failed transcription, an analysis.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use otto_db::entities::{call, shunya_job};
use otto_db::{TenantTxn, shunya_jobs};
use otto_domain::Severity;
use otto_domain::catalog::{CALL_ANALYSIS_READY, CALL_TRANSCRIPT_READY, CALL_TRANSCRIPTION_FAILED};
use otto_domain::jobs::{AnalyseCall, TranscribeWithDeepgram};
use otto_integrations::uwc::AsrOutput;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, QueryFilter};
use serde_json::{Value, json};

use crate::ServiceError;
use crate::calls::call_event;

/// Applies `output` of the ASR `job` to its call, unless this very output was applied before (a
/// webhook after polling, a poll after the webhook, a retried delivery). Emits
/// `call.transcript.ready`, enqueues the analysis and counts the minutes once committed. True
/// when it changed the call.
///
/// # Errors
/// On database failure.
pub async fn store_transcript(
    utx: &TenantTxn,
    job: &shunya_job::Model,
    output: &AsrOutput,
) -> Result<bool, ServiceError> {
    if !shunya_jobs::complete_once(utx.conn(), job, &output.hash()).await? {
        return Ok(false);
    }
    let Some(call_id) = job.call_id else {
        return Ok(false);
    };
    let transcript = Transcript {
        text: &output.transcript,
        duration_seconds: output.duration_seconds,
        language: output.language.as_deref(),
        provider: UWC,
        reference: &job.shunya_job_id,
    };
    apply_transcript(utx, call_id, &transcript).await
}

pub const UWC: &str = "uwc";
pub const DEEPGRAM: &str = "deepgram";

/// A transcript from an ASR provider.
#[derive(Debug, Clone)]
pub struct Transcript<'a> {
    pub text: &'a str,
    pub duration_seconds: Option<f64>,
    pub language: Option<&'a str>,
    /// [`UWC`] or [`DEEPGRAM`].
    pub provider: &'static str,
    /// The provider's id of the work (UWC job id, Deepgram request id).
    pub reference: &'a str,
}

/// Writes `transcript` on the call unless it has one (the first transcript wins, whichever
/// provider: the fallback and a late UWC result never make two). Emits `call.transcript.ready`,
/// enqueues the analysis and counts the minutes by provider once committed. True when written.
///
/// # Errors
/// On database failure.
pub async fn apply_transcript(
    utx: &TenantTxn,
    call_id: uuid::Uuid,
    transcript: &Transcript<'_>,
) -> Result<bool, ServiceError> {
    let Some(call) = utx.scope().find_by_id::<call::Entity, _>(call_id).await? else {
        return Ok(false);
    };
    let written = utx
        .scope()
        .update_many::<call::Entity>()
        .col_expr(call::Column::Transcript, Expr::value(transcript.text))
        .col_expr(call::Column::AsrProvider, Expr::value(transcript.provider))
        .col_expr(call::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(call::Column::Id.eq(call.id))
        .filter(call::Column::Transcript.is_null())
        .exec(utx.conn())
        .await?;
    if written.rows_affected == 0 {
        return Ok(false);
    }
    let seconds = transcript
        .duration_seconds
        .or(call.duration_seconds.map(f64::from))
        .unwrap_or(0.0);
    utx.emit(call_event(
        CALL_TRANSCRIPT_READY,
        utx.tenant(),
        utx.trace(),
        &call,
        json!({
            "call_id": call.id,
            "shunya_job_id": (transcript.provider == UWC).then_some(transcript.reference),
            "asr_provider": transcript.provider,
            "duration_seconds": seconds,
            "language": transcript.language,
        }),
    ));
    utx.enqueue(&AnalyseCall {
        tenant_id: utx.tenant().clone(),
        call_id: call.id.into(),
        trace_id: utx.trace().clone(),
    })?;
    let provider = transcript.provider;
    utx.after_commit(move || count_asr_minutes(provider, seconds / 60.0));
    Ok(true)
}

/// Marks the ASR `job` failed (UWC gave up, or polling did), with its event, once.
///
/// # Errors
/// On database failure.
pub async fn fail_transcription(
    utx: &TenantTxn,
    job: &shunya_job::Model,
    reason: &str,
) -> Result<bool, ServiceError> {
    if !shunya_jobs::fail_once(utx.conn(), job).await? {
        return Ok(false);
    }
    utx.emit(
        utx.event(
            CALL_TRANSCRIPTION_FAILED,
            json!({ "call_id": job.call_id, "shunya_job_id": job.shunya_job_id, "reason": reason }),
        )
        .with_severity(Severity::Warning),
    );
    // The fallback ASR takes over (it does nothing without DEEPGRAM_API_KEY).
    if let Some(call_id) = job.call_id {
        utx.enqueue(&TranscribeWithDeepgram {
            tenant_id: utx.tenant().clone(),
            call_id: call_id.into(),
            trace_id: utx.trace().clone(),
        })?;
    }
    Ok(true)
}

/// Stores `analysis` on `call` unless it already has one (the first result wins; a retried job
/// or a repeated callback changes nothing), emits `call.analysis.ready` and turns each key
/// signal into a task (`tasks::from_key_signals`). True when stored.
///
/// # Errors
/// On database failure.
pub async fn store_analysis(
    utx: &TenantTxn,
    call: &call::Model,
    analysis: Value,
) -> Result<bool, ServiceError> {
    let changed = utx
        .scope()
        .update_many::<call::Entity>()
        .col_expr(call::Column::Analysis, Expr::value(analysis.clone()))
        .col_expr(
            call::Column::Objections,
            Expr::value(analysis.get("objections").cloned()),
        )
        .col_expr(call::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(call::Column::Id.eq(call.id))
        .filter(call::Column::Analysis.is_null())
        .exec(utx.conn())
        .await?;
    if changed.rows_affected == 0 {
        return Ok(false);
    }
    let field = |name: &str| analysis.get(name).cloned().unwrap_or(Value::Null);
    utx.emit(call_event(
        CALL_ANALYSIS_READY,
        utx.tenant(),
        utx.trace(),
        call,
        json!({
            "call_id": call.id,
            "sentiment": field("sentiment"),
            "booking_intent": field("booking_intent"),
            "objections": field("objections"),
        }),
    ));
    let signals: Vec<String> = analysis
        .get("key_signals")
        .and_then(Value::as_array)
        .map(|signals| {
            signals
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    crate::tasks::from_key_signals(utx, call, &signals).await?;
    Ok(true)
}

/// Adds transcribed audio to `asr_minutes_total{provider}`. The counter is an integer, so
/// seconds are summed per process and provider, and the counter moves by whole minutes: no
/// call's fraction is lost.
pub fn count_asr_minutes(provider: &'static str, minutes: f64) {
    static UWC_MS: AtomicU64 = AtomicU64::new(0);
    static DEEPGRAM_MS: AtomicU64 = AtomicU64::new(0);
    let total = if provider == DEEPGRAM {
        &DEEPGRAM_MS
    } else {
        &UWC_MS
    };
    let added = (minutes.max(0.0) * 60_000.0).round() as u64;
    let before = total.fetch_add(added, Ordering::Relaxed);
    let whole = (before + added) / 60_000 - before / 60_000;
    metrics::counter!("asr_minutes_total", "provider" => provider).increment(whole);
}
