//! The call pipeline (SPEC sections 8 and 10): a call with a recording is transcribed by UWC
//! (`asr.transcribe` submits; the `asr/complete` webhook or `poll-shunya-jobs` brings the
//! transcript, whichever is first), then analysed (`analysis.run`), then given a follow-up draft
//! (`followups.draft`). Each step is idempotent on what the database already holds, writes its
//! result, its event and the next step's job in one transaction, and `process-pending-transcriptions`
//! re-enqueues any call left between steps (a crash between commit and enqueue, a dead job).

mod analysis;
mod followups;
mod polling;
mod sweep;
mod transcripts;

use std::sync::Arc;

use otto_db::entities::call;
use otto_db::{DbErr, TenantScope};
use otto_domain::{EventEnvelope, TenantId, TraceId};
use otto_integrations::uwc::{UwcClient, UwcError, UwcSettings};
use otto_runtime::jobs::Queue;
use otto_runtime::uwc_config::UwcFeatures;
use otto_runtime::{AppContext, Config};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::typed::JobKind;
use crate::{JobError, Registry};

pub use followups::insert_draft;
pub use polling::PollShunyaJobs;
pub use sweep::ProcessPendingTranscriptions;
pub use transcripts::{TranscriptStored, count_asr_minutes, fail_transcription, store_transcript};

/// Events of the pipeline (see `docs/events/catalog.md`).
pub const TRANSCRIPT_READY: &str = "call.transcript.ready";
pub const TRANSCRIPTION_FAILED: &str = "call.transcription.failed";
pub const ANALYSIS_READY: &str = "call.analysis.ready";
pub const FOLLOWUP_DRAFT_READY: &str = "followup.draft.ready";

/// The payload of every per-call step: the tenant, the call and the trace of the request that
/// started the pipeline.
macro_rules! call_step {
    ($(#[$doc:meta])* $name:ident, $job:literal, $queue:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            pub tenant_id: TenantId,
            pub call_id: Uuid,
            pub trace_id: TraceId,
        }

        impl JobKind for $name {
            const NAME: &'static str = $job;
            const QUEUE: Queue = $queue;
        }
    };
}

call_step!(
    /// Submits a call's recording to UWC batch ASR.
    TranscribeCall,
    "asr.transcribe",
    Queue::Asr
);
call_step!(
    /// Asks UWC for the objections, sentiment, booking intent and key signals of a transcript.
    AnalyseCall,
    "analysis.run",
    Queue::Analysis
);
call_step!(
    /// Asks UWC for a follow-up draft for an analysed call.
    DraftFollowup,
    "followups.draft",
    Queue::Followups
);

/// What the pipeline's handlers share: the UWC client (when configured) and the switched-on
/// features.
#[derive(Clone)]
pub struct Pipeline {
    uwc: Option<Arc<UwcClient>>,
    features: UwcFeatures,
    /// Where UWC posts `asr/complete` (`PUBLIC_BASE_URL`); without it, polling alone collects.
    callback_url: Option<String>,
    poll_delay: chrono::Duration,
}

impl Pipeline {
    pub fn from_config(config: &Config) -> Self {
        let uwc = UwcSettings::from_config(config).and_then(|settings| {
            UwcClient::new(settings)
                .map_err(|err| tracing::error!(error = %err, "UWC client unavailable"))
                .ok()
                .map(Arc::new)
        });
        let features = config.uwc.enabled();
        let callback_url = config
            .public_base_url
            .as_ref()
            .map(|base| format!("{}/webhooks/uwc/asr/complete", base.trim_end_matches('/')));
        Self {
            uwc,
            features,
            callback_url,
            poll_delay: chrono::Duration::from_std(config.uwc.poll_delay)
                .unwrap_or(chrono::Duration::seconds(30)),
        }
    }

    /// The client, if `enabled` is on for this step.
    fn client(&self, enabled: bool) -> Option<&UwcClient> {
        self.uwc.as_deref().filter(|_| enabled)
    }

    pub fn register(self, registry: &mut Registry) {
        registry
            .add(transcripts::Transcribe(self.clone()))
            .add(analysis::Analyse(self.clone()))
            .add(followups::Draft(self.clone()))
            .add(polling::Poll(self.clone()))
            .add(sweep::Sweep(self));
    }
}

/// A UWC refusal (4xx) will not change on retry; anything else may.
fn uwc_failure(err: UwcError) -> JobError {
    match err {
        UwcError::Status { status, .. } if (400..500).contains(&status) && status != 429 => {
            JobError::Permanent(err.into())
        }
        UwcError::Decode(_) => JobError::Permanent(err.into()),
        _ => JobError::Retryable(err.into()),
    }
}

async fn load_call(
    ctx: &AppContext,
    tenant: &TenantId,
    call_id: Uuid,
) -> Result<Option<call::Model>, DbErr> {
    TenantScope::new(&ctx.db, tenant.clone())
        .find_by_id::<call::Entity, _>(call_id)
        .await
}

/// An event about `call`, on its lead's timeline too.
fn call_event(
    name: &str,
    tenant: &TenantId,
    trace: &TraceId,
    call: &call::Model,
    data: Value,
) -> EventEnvelope {
    let envelope = EventEnvelope::new(name, tenant.clone(), trace.clone(), data);
    match call.lead_id {
        Some(lead) => envelope.with_lead(lead),
        None => envelope,
    }
}
