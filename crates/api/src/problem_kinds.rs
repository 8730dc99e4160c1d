//! Every kind of problem Otto answers, in one table: its slug (the `type` is `/problems/{slug}`),
//! status, title and when it happens. The error type, the fallback for framework refusals and
//! CORS all answer through these constants, and `docs/errors.md` is generated from the table (a
//! test fails while they differ; `UPDATE_ERRORS=1 cargo test -p otto-api` regenerates it).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemKind {
    pub slug: &'static str,
    pub status: u16,
    pub title: &'static str,
    pub when: &'static str,
}

const fn kind(
    slug: &'static str,
    status: u16,
    title: &'static str,
    when: &'static str,
) -> ProblemKind {
    ProblemKind {
        slug,
        status,
        title,
        when,
    }
}

pub const BAD_REQUEST: ProblemKind = kind(
    "bad-request",
    400,
    "Bad Request",
    "a request the framework cannot read at all",
);
pub const UNAUTHORIZED: ProblemKind = kind(
    "unauthorized",
    401,
    "Unauthorized",
    "no bearer token, one that fails verification (`WWW-Authenticate: Bearer`), or a webhook whose signature is refused",
);
pub const FORBIDDEN: ProblemKind = kind(
    "forbidden",
    403,
    "Forbidden",
    "token without an organization or Otto role; role not allowed on the route or the field",
);
pub const ORIGIN_NOT_ALLOWED: ProblemKind = kind(
    "origin-not-allowed",
    403,
    "Forbidden",
    "`Origin` not in `ALLOWED_ORIGINS`",
);
pub const NOT_FOUND: ProblemKind = kind(
    "not-found",
    404,
    "Not Found",
    "unknown route, or a resource that does not exist (or belongs to another tenant)",
);
pub const METHOD_NOT_ALLOWED: ProblemKind = kind(
    "method-not-allowed",
    405,
    "Method Not Allowed",
    "known path, other method (`Allow` header lists the methods)",
);
pub const CONFLICT: ProblemKind = kind(
    "conflict",
    409,
    "Conflict",
    "unique constraint (the resource already exists)",
);
pub const APPOINTMENT_CONFLICT: ProblemKind = kind(
    "appointment-conflict",
    409,
    "Conflict",
    "the rep already has a scheduled appointment overlapping the one booked, moved or assigned",
);
pub const IDEMPOTENCY_KEY_IN_USE: ProblemKind = kind(
    "idempotency-key-in-use",
    409,
    "Conflict",
    "a request with this `Idempotency-Key` is still being processed; retry shortly",
);
pub const IDEMPOTENCY_KEY_REUSED: ProblemKind = kind(
    "idempotency-key-reused",
    422,
    "Unprocessable Entity",
    "this `Idempotency-Key` was used with another method, path or body",
);
pub const FOLLOWUP_ALREADY_SENT: ProblemKind = kind(
    "followup-already-sent",
    409,
    "Conflict",
    "`POST /v1/followups/{id}/send` of a follow-up that is no longer a draft (sent or dismissed)",
);
pub const SMS_OPTED_OUT: ProblemKind = kind(
    "sms-opted-out",
    422,
    "Unprocessable Entity",
    "the lead texted STOP (or another opt-out word) and not START since",
);
pub const SMS_NOT_CONFIGURED: ProblemKind = kind(
    "sms-not-configured",
    503,
    "Service Unavailable",
    "Twilio is not configured (`TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, a sender number): Otto never pretends to send",
);
pub const CALENDAR_NOT_CONFIGURED: ProblemKind = kind(
    "calendar-not-configured",
    503,
    "Service Unavailable",
    "Google Calendar sync needs `GOOGLE_CLIENT_ID`, `GOOGLE_CLIENT_SECRET`, `ENCRYPTION_KEY` and `PUBLIC_BASE_URL` (or `GOOGLE_REDIRECT_URL`)",
);
pub const CALENDAR_NOT_CONNECTED: ProblemKind = kind(
    "calendar-not-connected",
    409,
    "Conflict",
    "the company has not connected Google Calendar (`GET /v1/calendar/google/authorize` first)",
);
pub const OAUTH_STATE_REFUSED: ProblemKind = kind(
    "oauth-state-refused",
    400,
    "Bad Request",
    "an OAuth callback whose `state` is unknown, already used or older than 10 minutes, or that Google answered with an error",
);
pub const CALENDAR_PROVIDER_ERROR: ProblemKind = kind(
    "calendar-provider-error",
    502,
    "Bad Gateway",
    "Google refused or failed a calendar request Otto made on the caller's behalf",
);
pub const ASSISTANT_DISABLED: ProblemKind = kind(
    "assistant-disabled",
    403,
    "Forbidden",
    "the company has not enabled the receptionist (`PATCH /v1/assistant {\"enabled\": true}`)",
);
pub const CONVERSATION_BUSY: ProblemKind = kind(
    "conversation-busy",
    409,
    "Conflict",
    "another turn of the conversation was still running after 5 seconds",
);
pub const STALE_VERSION: ProblemKind = kind(
    "stale-version",
    412,
    "Precondition Failed",
    "`If-Match` names an older version",
);
pub const PAYLOAD_TOO_LARGE: ProblemKind = kind(
    "payload-too-large",
    413,
    "Payload Too Large",
    "body above `MAX_BODY_BYTES`",
);
pub const UNSUPPORTED_MEDIA_TYPE: ProblemKind = kind(
    "unsupported-media-type",
    415,
    "Unsupported Media Type",
    "JSON route called with another content type",
);
pub const VALIDATION_ERROR: ProblemKind = kind(
    "validation-error",
    422,
    "Unprocessable Entity",
    "body, path or query that does not parse or breaks a rule; `errors` lists fields",
);
pub const TENANT_LOCKED: ProblemKind = kind(
    "tenant-locked",
    423,
    "Locked",
    "automation while the company is in lockdown",
);
pub const IF_MATCH_REQUIRED: ProblemKind = kind(
    "if-match-required",
    428,
    "Precondition Required",
    "update without `If-Match`",
);
pub const RATE_LIMITED: ProblemKind = kind(
    "rate-limited",
    429,
    "Too Many Requests",
    "a rate limit is exhausted; `retry_after` and `Retry-After` say when to retry",
);
pub const HTTP_ERROR: ProblemKind = kind(
    "http-error",
    400,
    "Bad Request",
    "any other refusal by the framework (the status says which)",
);
pub const INTERNAL_ERROR: ProblemKind = kind(
    "internal-error",
    500,
    "Internal Server Error",
    "anything unexpected (logged with its cause chain)",
);
pub const SERVICE_UNAVAILABLE: ProblemKind = kind(
    "service-unavailable",
    503,
    "Service Unavailable",
    "a dependency (database pool, Redis) is unavailable",
);

pub const KINDS: &[ProblemKind] = &[
    BAD_REQUEST,
    UNAUTHORIZED,
    FORBIDDEN,
    ORIGIN_NOT_ALLOWED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    CONFLICT,
    APPOINTMENT_CONFLICT,
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_REUSED,
    FOLLOWUP_ALREADY_SENT,
    SMS_OPTED_OUT,
    SMS_NOT_CONFIGURED,
    CALENDAR_NOT_CONFIGURED,
    CALENDAR_NOT_CONNECTED,
    OAUTH_STATE_REFUSED,
    CALENDAR_PROVIDER_ERROR,
    ASSISTANT_DISABLED,
    CONVERSATION_BUSY,
    STALE_VERSION,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION_ERROR,
    TENANT_LOCKED,
    IF_MATCH_REQUIRED,
    RATE_LIMITED,
    HTTP_ERROR,
    INTERNAL_ERROR,
    SERVICE_UNAVAILABLE,
];

/// The Markdown of `docs/errors.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Errors\n\n\
         Generated from `crates/api/src/problem_kinds.rs` (`UPDATE_ERRORS=1 cargo test -p otto-api`\n\
         regenerates it; the test fails while they differ).\n\n\
         Every error is `application/problem+json` (RFC 9457):\n\n\
         ```json\n\
         {\"type\": \"/problems/validation-error\", \"title\": \"Unprocessable Entity\", \"status\": 422,\n \
         \"detail\": \"name: missing field `name`\", \"instance\": \"/v1/leads\", \"trace_id\": \"4bf9...\",\n \
         \"errors\": [{\"field\": \"name\", \"message\": \"missing field `name`\"}]}\n\
         ```\n\n\
         `trace_id` equals the response's `X-Request-Id` and the `trace_id` of the request's log lines.\n\
         No body ever carries a stack trace or SQL. `http-error` carries the framework's own status.\n\n\
         | type | status | title | when |\n\
         | --- | --- | --- | --- |\n",
    );
    for kind in KINDS {
        out.push_str(&format!(
            "| `/problems/{}` | {} | {} | {} |\n",
            kind.slug, kind.status, kind.title, kind.when
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_errors_are_the_code_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md");
        if std::env::var("UPDATE_ERRORS").is_ok() {
            std::fs::write(path, markdown()).unwrap_or_default();
        }
        let documented = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            documented,
            markdown(),
            "regenerate docs/errors.md from the table (see its header)"
        );
    }

    #[test]
    fn slugs_are_unique_and_titles_are_the_statuses_reasons() {
        for (i, kind) in KINDS.iter().enumerate() {
            assert!(
                KINDS[i + 1..].iter().all(|other| other.slug != kind.slug),
                "{}",
                kind.slug
            );
            let status = actix_web::http::StatusCode::from_u16(kind.status);
            assert_eq!(
                status.ok().and_then(|s| s.canonical_reason()),
                Some(kind.title),
                "{}",
                kind.slug
            );
        }
    }
}
