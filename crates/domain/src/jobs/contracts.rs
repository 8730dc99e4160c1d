//! The payload of every job: its type, its job name and its queue in one place.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{JobKind, Queue};
use crate::{CallId, TenantId, TraceId};

/// The payload of every per-call step: the tenant, the call and the trace of the request that
/// started the pipeline.
macro_rules! call_step {
    ($(#[$doc:meta])* $name:ident, $job:literal, $queue:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            pub tenant_id: TenantId,
            pub call_id: CallId,
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
    /// Transcribes a call's recording with Deepgram when UWC is off or failed it.
    TranscribeWithDeepgram,
    "asr.deepgram",
    Queue::Asr
);
call_step!(
    /// Fills a call from CallRail's API when its webhook lacked the recording or duration.
    EnrichCallRailCall,
    "callrail.enrich",
    Queue::Default
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

/// Sends one outbound text through Twilio (SPEC section 13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendSms {
    pub tenant_id: TenantId,
    pub message_id: uuid::Uuid,
    pub trace_id: TraceId,
}

impl JobKind for SendSms {
    const NAME: &'static str = "sms.send";
    const QUEUE: Queue = Queue::Default;
}

/// Asks the model for a lead's property facts (SPEC section 17).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookUpProperty {
    pub tenant_id: TenantId,
    pub lead_id: uuid::Uuid,
    pub trace_id: TraceId,
}

impl JobKind for LookUpProperty {
    const NAME: &'static str = "leads.property_intel";
    const QUEUE: Queue = Queue::Default;
}

/// Hands an uploaded document to UWC for indexing (SPEC section 14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDocument {
    pub tenant_id: TenantId,
    pub document_id: uuid::Uuid,
    pub trace_id: TraceId,
}

impl JobKind for IndexDocument {
    const NAME: &'static str = "documents.index";
    const QUEUE: Queue = Queue::Indexing;
}

/// Submits a rep's analysed calls to UWC to train its voice/style model (SPEC section 14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainRep {
    pub tenant_id: TenantId,
    pub rep_id: uuid::Uuid,
    pub trace_id: TraceId,
}

impl JobKind for TrainRep {
    const NAME: &'static str = "training.submit";
    const QUEUE: Queue = Queue::Uwc;
}

/// Pulls a company's Google Calendar changes (SPEC section 15); concurrent ones coalesce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncCalendar {
    pub tenant_id: TenantId,
    pub trace_id: TraceId,
}

impl JobKind for SyncCalendar {
    const NAME: &'static str = "calendar.sync";
    const QUEUE: Queue = Queue::Default;
}

/// Writes one appointment to the company's Google Calendar (insert, patch or delete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushAppointment {
    pub tenant_id: TenantId,
    pub appointment_id: uuid::Uuid,
    pub trace_id: TraceId,
}

impl JobKind for PushAppointment {
    const NAME: &'static str = "calendar.push_appointment";
    const QUEUE: Queue = Queue::Default;
}

/// What the scheduler enqueues for a slot: the schedule that fired and the slot's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotPayload {
    pub schedule: String,
    pub slot: DateTime<Utc>,
}

/// Declares the payload of a scheduled job (a [`SlotPayload`] under its own name).
macro_rules! scheduled_job {
    ($(#[$doc:meta])* $name:ident, $job:literal, $queue:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name {
            pub schedule: String,
            pub slot: DateTime<Utc>,
        }

        impl JobKind for $name {
            const NAME: &'static str = $job;
            const QUEUE: Queue = $queue;
        }
    };
}

scheduled_job!(
    /// Enqueues the pipeline step missing for calls left between two steps.
    ProcessPendingTranscriptions,
    "transcriptions.process_pending",
    Queue::Asr
);
scheduled_job!(
    /// Asks UWC about every unfinished job whose next poll is due.
    PollUwcJobs,
    "shunya.poll",
    Queue::Shunya
);
scheduled_job!(
    /// One report per tenant for the UTC day before the slot.
    GenerateDailyReports,
    "reports.daily",
    Queue::Default
);
scheduled_job!(
    /// Writes every daily report a tenant lacks for the seven UTC days before the slot.
    CheckMissingReports,
    "reports.check_missing",
    Queue::Default
);
scheduled_job!(
    /// Deletes sent outbox events older than a week.
    PurgeOutbox,
    "maintenance.purge_outbox",
    Queue::Default
);
scheduled_job!(
    /// Deletes heartbeats of workers silent for a day.
    PurgeHeartbeats,
    "maintenance.purge_heartbeats",
    Queue::Default
);
scheduled_job!(
    /// Deletes schedule slots older than a week.
    PurgeScheduleRuns,
    "maintenance.purge_schedule_runs",
    Queue::Default
);
scheduled_job!(
    /// Deletes webhook idempotency keys past `IDEMPOTENCY_TTL_DAYS`.
    PurgeIdempotencyKeys,
    "maintenance.purge_idempotency_keys",
    Queue::Default
);
scheduled_job!(
    /// Deletes tasks finished more than a quarter ago.
    CleanupOldTasks,
    "maintenance.cleanup_old_tasks",
    Queue::Default
);
scheduled_job!(
    /// Expires recording sessions past their time and deletes long-expired ones.
    CleanupEphemeralSessions,
    "maintenance.cleanup_ephemeral_sessions",
    Queue::Default
);

scheduled_job!(
    /// One callback task (and, when enabled, one Bland call) per missed call.
    ProcessMissedCalls,
    "missed-calls.process",
    Queue::Default
);
scheduled_job!(
    /// Renews the Google push channels that expire within a day.
    RenewCalendarChannels,
    "calendar.renew_channels",
    Queue::Default
);

/// Does nothing: for smoke checks of a deployment and the queue benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noop {}

impl JobKind for Noop {
    const NAME: &'static str = "system.noop";
    const QUEUE: Queue = Queue::Default;
}
