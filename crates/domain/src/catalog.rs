//! Every real-time event Otto emits, with the channels it reaches and its `data` fields: the one
//! place in code that defines them. `docs/events/catalog.md` is generated from this table (a test
//! fails when the two differ).

/// Event names: emit through these, never a string literal.
pub const TELEPHONY_CALL_RECEIVED: &str = "telephony.call.received";
pub const TELEPHONY_CALL_COMPLETED: &str = "telephony.call.completed";
pub const TELEPHONY_CALL_STATUS: &str = "telephony.call.status";
pub const TELEPHONY_SMS_RECEIVED: &str = "telephony.sms.received";
pub const TELEPHONY_SMS_SENT: &str = "telephony.sms.sent";
pub const SYSTEM_WEBHOOK_PROCESSED: &str = "system.webhook.processed";
pub const SYSTEM_BUFFER_DROPPED: &str = "system.buffer_dropped";
pub const WORKER_TASK_FINISHED: &str = "worker.task.finished";
pub const WORKER_TASK_FAILED: &str = "worker.task.failed";
pub const IDENTITY_USER_CREATED: &str = "identity.user.created";
pub const IDENTITY_USER_UPDATED: &str = "identity.user.updated";
pub const TASK_UPDATED: &str = "task.updated";
pub const APPOINTMENT_ASSIGNED: &str = "appointment.assigned";
pub const APPOINTMENT_CREATED: &str = "appointment.created";
pub const APPOINTMENT_UPDATED: &str = "appointment.updated";
pub const LEAD_UPDATED: &str = "lead.updated";
pub const CALL_TRANSCRIPT_READY: &str = "call.transcript.ready";
pub const CALL_TRANSCRIPTION_FAILED: &str = "call.transcription.failed";
pub const CALL_ANALYSIS_READY: &str = "call.analysis.ready";
pub const FOLLOWUP_DRAFT_READY: &str = "followup.draft.ready";
pub const FOLLOWUP_UPDATED: &str = "followup.updated";
pub const ANALYTICS_DAILY_RECAP_READY: &str = "analytics.daily_recap.ready";
pub const ASSISTANT_CONVERSATION_COMPLETED: &str = "assistant.conversation.completed";
pub const DOCUMENT_INDEXED: &str = "document.indexed";
pub const TRAINING_STATUS: &str = "training.status";

/// Which channels an event is routed to, besides its tenant's `tenant:{tenant_id}:events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// Also sent on `user:{user_id}:tasks` when the envelope names a user.
    pub user_channel: bool,
    /// Also sent on `lead:{lead_id}:timeline` when the envelope names a lead.
    pub lead_channel: bool,
    pub data_fields: &'static [&'static str],
}

const fn spec(
    name: &'static str,
    description: &'static str,
    user_channel: bool,
    lead_channel: bool,
    data_fields: &'static [&'static str],
) -> EventSpec {
    EventSpec {
        name,
        description,
        user_channel,
        lead_channel,
        data_fields,
    }
}

const APPOINTMENT_FIELDS: &[&str] = &[
    "appointment_id",
    "lead_id",
    "rep_user_id",
    "starts_at",
    "status",
    "version",
];

pub const CATALOG: &[EventSpec] = &[
    spec(
        TELEPHONY_CALL_RECEIVED,
        "A call started (CallRail pre-call, Twilio voice).",
        false,
        true,
        &["call_id", "provider", "status"],
    ),
    spec(
        TELEPHONY_CALL_COMPLETED,
        "A call ended.",
        false,
        true,
        &["call_id", "provider", "status"],
    ),
    spec(
        TELEPHONY_CALL_STATUS,
        "A call changed status or was modified.",
        false,
        true,
        &["call_id", "provider", "status"],
    ),
    spec(
        TELEPHONY_SMS_RECEIVED,
        "An inbound SMS was stored.",
        false,
        true,
        &["message_sid", "provider"],
    ),
    spec(
        TELEPHONY_SMS_SENT,
        "An outbound SMS was sent.",
        true,
        true,
        &["message_id", "to"],
    ),
    spec(
        SYSTEM_WEBHOOK_PROCESSED,
        "A provider delivery was processed (once).",
        false,
        false,
        &["provider", "external_id"],
    ),
    spec(
        SYSTEM_BUFFER_DROPPED,
        "This connection was too slow; older events were dropped.",
        false,
        false,
        &["dropped"],
    ),
    spec(
        WORKER_TASK_FINISHED,
        "A background job finished.",
        false,
        false,
        &["task_id", "name", "queue", "attempts", "duration_ms"],
    ),
    spec(
        WORKER_TASK_FAILED,
        "A background job attempt failed.",
        false,
        false,
        &[
            "task_id",
            "name",
            "queue",
            "attempts",
            "duration_ms",
            "error",
        ],
    ),
    spec(
        IDENTITY_USER_CREATED,
        "A user joined the company.",
        true,
        false,
        &["user_id", "role"],
    ),
    spec(
        IDENTITY_USER_UPDATED,
        "A user's profile or role changed.",
        true,
        false,
        &["user_id"],
    ),
    spec(
        TASK_UPDATED,
        "A task was created or changed.",
        true,
        true,
        &["task_id", "status"],
    ),
    spec(
        APPOINTMENT_ASSIGNED,
        "An appointment was assigned to a rep (on booking with a rep, or reassigned).",
        true,
        true,
        APPOINTMENT_FIELDS,
    ),
    spec(
        APPOINTMENT_CREATED,
        "An appointment was booked.",
        true,
        true,
        APPOINTMENT_FIELDS,
    ),
    spec(
        APPOINTMENT_UPDATED,
        "An appointment's time, details or status changed.",
        true,
        true,
        APPOINTMENT_FIELDS,
    ),
    spec(
        LEAD_UPDATED,
        "A lead was created or changed.",
        false,
        true,
        &["lead_id", "change", "status", "version"],
    ),
    spec(
        CALL_TRANSCRIPT_READY,
        "A call's recording was transcribed (UWC webhook or polling, whichever came first).",
        false,
        true,
        &["call_id", "shunya_job_id", "duration_seconds", "language"],
    ),
    spec(
        CALL_TRANSCRIPTION_FAILED,
        "UWC gave up on a call's transcription, or polling did.",
        false,
        false,
        &["call_id", "shunya_job_id", "reason"],
    ),
    spec(
        CALL_ANALYSIS_READY,
        "A call's objections, sentiment, booking intent and key signals were stored.",
        false,
        true,
        &["call_id", "sentiment", "booking_intent", "objections"],
    ),
    spec(
        FOLLOWUP_DRAFT_READY,
        "A follow-up draft was written for an analysed call.",
        false,
        true,
        &["follow_up_id", "call_id", "channel"],
    ),
    spec(
        FOLLOWUP_UPDATED,
        "A follow-up draft was edited or dismissed.",
        false,
        true,
        &["follow_up_id", "call_id", "status", "message_id"],
    ),
    spec(
        ANALYTICS_DAILY_RECAP_READY,
        "The daily report is ready.",
        false,
        false,
        &["report_id", "report_date"],
    ),
    spec(
        ASSISTANT_CONVERSATION_COMPLETED,
        "The receptionist finished a conversation: booked, transferred, took a message or ended.",
        false,
        true,
        &[
            "conversation_id",
            "channel",
            "outcome",
            "appointment_id",
            "task_id",
            "lead_id",
        ],
    ),
    spec(
        DOCUMENT_INDEXED,
        "UWC finished indexing a document for Ask Otto (`indexed`) or gave up (`failed`).",
        false,
        false,
        &["document_id", "status"],
    ),
    spec(
        TRAINING_STATUS,
        "A rep's UWC voice/style model changed status (`submitted`, `completed`, `failed`).",
        false,
        false,
        &["rep_id", "user_id", "status"],
    ),
];

pub fn find(name: &str) -> Option<&'static EventSpec> {
    CATALOG.iter().find(|spec| spec.name == name)
}

/// The Markdown of `docs/events/catalog.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Event catalog\n\nGenerated from `crates/domain/src/catalog.rs` (`UPDATE_CATALOG=1 cargo test -p otto-domain`\n\
         regenerates it; the test fails while they differ). Every event is\n\
         sent on `tenant:{tenant_id}:events`; the columns say which other channels it reaches.\n\
         Envelope: `{\"version\":\"1\",\"event\",\"ts\",\"severity\",\"trace_id\",\"tenant_id\",\"user_id\",\"lead_id\",\"data\"}`.\n\n\
         | event | description | `user:{user_id}:tasks` | `lead:{lead_id}:timeline` | `data` fields |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for spec in CATALOG {
        let yes = |b: bool| if b { "yes" } else { "" };
        let fields: Vec<String> = spec.data_fields.iter().map(|f| format!("`{f}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            spec.name,
            spec.description,
            yes(spec.user_channel),
            yes(spec.lead_channel),
            fields.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_catalog_is_the_code_catalog() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events/catalog.md");
        if std::env::var("UPDATE_CATALOG").is_ok() {
            std::fs::write(path, markdown()).unwrap_or_default();
        }
        let documented = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            documented,
            markdown(),
            "regenerate docs/events/catalog.md from the catalog (see its header)"
        );
    }

    #[test]
    fn names_are_unique() {
        for (i, spec) in CATALOG.iter().enumerate() {
            assert!(
                CATALOG[i + 1..].iter().all(|other| other.name != spec.name),
                "{}",
                spec.name
            );
        }
    }
}
