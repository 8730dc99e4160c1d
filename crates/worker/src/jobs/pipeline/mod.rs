//! The call pipeline (SPEC sections 8 and 10): a call with a recording is transcribed by UWC
//! (`asr.transcribe` submits; the `asr/complete` webhook or `poll-shunya-jobs` brings the
//! transcript, whichever is first), then analysed (`analysis.run`), then given a follow-up draft
//! (`followups.draft`). Each step is idempotent on what the database already holds, writes its
//! result, its event and the next step's job in one transaction, and `process-pending-transcriptions`
//! re-enqueues any call left between steps (a crash between commit and enqueue, a dead job).

mod analysis;
mod fallback;
mod followups;
mod polling;
mod sweep;
mod transcripts;

use std::sync::Arc;

use otto_domain::jobs::{
    AnalyseCall, DraftFollowup, PollUwcJobs, ProcessPendingTranscriptions, TranscribeCall,
    TranscribeWithDeepgram,
};
use otto_integrations::deepgram::{DeepgramClient, DeepgramSettings};
use otto_integrations::uwc::{UwcClient, UwcError, UwcSettings};
use otto_runtime::Config;
use otto_runtime::uwc_config::UwcFeatures;

use crate::{JobError, Registry};

/// What the pipeline's handlers share: the UWC client (when configured) and the switched-on
/// features.
#[derive(Clone)]
pub struct Pipeline {
    uwc: Option<Arc<UwcClient>>,
    /// The fallback ASR, when `DEEPGRAM_API_KEY` is set.
    deepgram: Option<Arc<DeepgramClient>>,
    features: UwcFeatures,
    /// Where UWC posts `asr/complete` (`PUBLIC_BASE_URL`); without it, polling alone collects.
    callback_url: Option<String>,
    poll_delay: chrono::Duration,
    /// How long the sweep leaves a call alone after its last change.
    sweep_grace: chrono::Duration,
}

impl Pipeline {
    pub fn from_config(config: &Config) -> Self {
        let uwc = UwcSettings::from_config(config).and_then(|settings| {
            UwcClient::new(settings)
                .map_err(|err| tracing::error!(error = %err, "UWC client unavailable"))
                .ok()
                .map(Arc::new)
        });
        let deepgram = DeepgramSettings::from_config(config).and_then(|settings| {
            DeepgramClient::new(settings)
                .map_err(|err| tracing::error!(error = %err, "Deepgram client unavailable"))
                .ok()
                .map(Arc::new)
        });
        let features = config.integrations.uwc.enabled();
        let callback_url = config
            .http
            .public_base_url
            .as_ref()
            .map(|base| format!("{}/webhooks/uwc/asr/complete", base.trim_end_matches('/')));
        Self {
            uwc,
            deepgram,
            features,
            callback_url,
            poll_delay: chrono::Duration::from_std(config.integrations.uwc.poll_delay)
                .unwrap_or(chrono::Duration::seconds(30)),
            sweep_grace: chrono::Duration::from_std(config.integrations.uwc.sweep_grace)
                .unwrap_or(chrono::Duration::minutes(2)),
        }
    }

    /// The client, if `enabled` is on for this step.
    fn client(&self, enabled: bool) -> Option<&UwcClient> {
        self.uwc.as_deref().filter(|_| enabled)
    }

    pub fn register(self, registry: &mut Registry) {
        registry
            .add::<TranscribeCall>(self.clone())
            .add::<TranscribeWithDeepgram>(self.clone())
            .add::<AnalyseCall>(self.clone())
            .add::<DraftFollowup>(self.clone())
            .add::<PollUwcJobs>(self.clone())
            .add::<ProcessPendingTranscriptions>(self);
    }
}

/// A UWC refusal (4xx) will not change on retry; anything else may.
pub(crate) fn uwc_failure(err: UwcError) -> JobError {
    match err {
        UwcError::Status { status, .. } if (400..500).contains(&status) && status != 429 => {
            JobError::Permanent(err.into())
        }
        UwcError::Decode(_) => JobError::Permanent(err.into()),
        _ => JobError::Retryable(err.into()),
    }
}

/// How long an ASR provider may take to fetch a recording kept in Otto's storage.
const RECORDING_URL_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Where an ASR provider fetches the call's audio: the provider's recording URL, or for a
/// recording in Otto's storage (an in-person visit) a presigned / signed URL to it; `None` once
/// the call is transcribed or when it has no recording.
pub(super) async fn audio_url(
    ctx: &otto_runtime::AppContext,
    call: &otto_db::entities::call::Model,
) -> Result<Option<String>, JobError> {
    if call.transcript.is_some() {
        return Ok(None);
    }
    if let Some(key) = &call.recording_key {
        let key = otto_runtime::storage::ObjectKey::stored(key.clone());
        let url = ctx
            .storage
            .read_url(&key, "application/octet-stream", RECORDING_URL_TTL)
            .await
            .map_err(|err| JobError::Retryable(err.into()))?;
        return Ok(Some(url));
    }
    Ok(call.recording_url.clone())
}
