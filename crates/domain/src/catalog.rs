//! Every real-time event Otto emits, with the channels it reaches and its `data` fields: the one
//! place in code that defines them. `docs/events/catalog.md` is generated from this table (a test
//! fails when the two differ).

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

pub const CATALOG: &[EventSpec] = &[
    spec(
        "telephony.call.received",
        "A call started (CallRail pre-call, Twilio voice).",
        false,
        true,
        &["call_id", "provider", "status"],
    ),
    spec(
        "telephony.call.completed",
        "A call ended.",
        false,
        true,
        &["call_id", "provider", "status"],
    ),
    spec(
        "telephony.call.status",
        "A call changed status or was modified.",
        false,
        true,
        &["call_id", "provider", "status"],
    ),
    spec(
        "telephony.sms.received",
        "An inbound SMS was stored.",
        false,
        true,
        &["message_sid", "provider"],
    ),
    spec(
        "telephony.sms.sent",
        "An outbound SMS was sent.",
        true,
        true,
        &["message_id", "to"],
    ),
    spec(
        "system.webhook.processed",
        "A provider delivery was processed (once).",
        false,
        false,
        &["provider", "external_id"],
    ),
    spec(
        "system.buffer_dropped",
        "This connection was too slow; older events were dropped.",
        false,
        false,
        &["dropped"],
    ),
    spec(
        "worker.task.finished",
        "A background job finished.",
        false,
        false,
        &["task_id", "name", "queue", "attempts", "duration_ms"],
    ),
    spec(
        "worker.task.failed",
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
        "identity.user.created",
        "A user joined the company.",
        true,
        false,
        &["user_id", "role"],
    ),
    spec(
        "identity.user.updated",
        "A user's profile or role changed.",
        true,
        false,
        &["user_id"],
    ),
    spec(
        "task.updated",
        "A task was created or changed.",
        true,
        true,
        &["task_id", "status"],
    ),
    spec(
        "appointment.assigned",
        "An appointment was assigned to a rep.",
        true,
        true,
        &["appointment_id", "rep_user_id"],
    ),
    spec(
        "lead.updated",
        "A lead was created or changed.",
        false,
        true,
        &["lead_id", "change", "status", "version"],
    ),
    spec(
        "call.transcript.ready",
        "A call's recording was transcribed (UWC webhook or polling, whichever came first).",
        false,
        true,
        &["call_id", "shunya_job_id", "duration_seconds", "language"],
    ),
    spec(
        "call.transcription.failed",
        "UWC gave up on a call's transcription, or polling did.",
        false,
        false,
        &["call_id", "shunya_job_id", "reason"],
    ),
    spec(
        "call.analysis.ready",
        "A call's objections, sentiment, booking intent and key signals were stored.",
        false,
        true,
        &["call_id", "sentiment", "booking_intent", "objections"],
    ),
    spec(
        "followup.draft.ready",
        "A follow-up draft was written for an analysed call.",
        false,
        true,
        &["follow_up_id", "call_id", "channel"],
    ),
    spec(
        "analytics.daily_recap.ready",
        "The daily report is ready.",
        false,
        false,
        &["report_id", "report_date"],
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
