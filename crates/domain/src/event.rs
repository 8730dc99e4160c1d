//! The envelope every real-time event travels in (SPEC section 7).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{TenantId, TraceId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub version: String,
    pub event: String,
    /// RFC 3339 with milliseconds, UTC.
    pub ts: String,
    pub severity: Severity,
    pub trace_id: TraceId,
    pub tenant_id: TenantId,
    pub user_id: Option<UserId>,
    pub lead_id: Option<String>,
    pub data: Value,
}

impl EventEnvelope {
    pub const VERSION: &'static str = "1";

    pub fn new(
        event: impl Into<String>,
        tenant_id: TenantId,
        trace_id: TraceId,
        data: Value,
    ) -> Self {
        Self::at(Utc::now(), event, tenant_id, trace_id, data)
    }

    pub fn at(
        ts: DateTime<Utc>,
        event: impl Into<String>,
        tenant_id: TenantId,
        trace_id: TraceId,
        data: Value,
    ) -> Self {
        Self {
            version: Self::VERSION.to_owned(),
            event: event.into(),
            ts: ts.to_rfc3339_opts(SecondsFormat::Millis, true),
            severity: Severity::Info,
            trace_id,
            tenant_id,
            user_id: None,
            lead_id: None,
            data,
        }
    }

    pub fn with_user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    pub fn with_lead(mut self, lead_id: impl ToString) -> Self {
        self.lead_id = Some(lead_id.to_string());
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// The channel every event of a tenant is published on.
    pub fn tenant_channel(&self) -> String {
        format!("tenant:{}:events", self.tenant_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn envelope_serialises_with_every_field() -> Result<(), Box<dyn std::error::Error>> {
        let ts = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .ok_or("bad date")?;
        let envelope = EventEnvelope::at(
            ts,
            "system.webhook.processed",
            TenantId::try_from("org_1")?,
            TraceId::parse("t1").ok_or("bad trace")?,
            serde_json::json!({"provider": "twilio"}),
        );
        let json = serde_json::to_value(&envelope)?;
        assert_eq!(
            json,
            serde_json::json!({
                "version": "1", "event": "system.webhook.processed",
                "ts": "2026-01-02T03:04:05.000Z", "severity": "info", "trace_id": "t1",
                "tenant_id": "org_1", "user_id": null, "lead_id": null,
                "data": {"provider": "twilio"}
            })
        );
        Ok(())
    }
}
