//! A `tracing` layer that writes one JSON object per event: `ts, level, service, message,
//! trace_id`, then every field of the event and of its enclosing spans (`route`, `tenant_id`...).

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::redact::redact;
use super::{LogSink, Service};

/// Fields that hold identifiers or measurements, never free text: not redacted.
const NOT_PII: [&str; 11] = [
    "ts",
    "level",
    "service",
    "trace_id",
    "route",
    "method",
    "status",
    "latency_ms",
    "tenant_id",
    "job",
    "connection_id",
];

pub struct JsonLogLayer {
    service: Service,
    redact_pii: bool,
    sink: LogSink,
}

impl JsonLogLayer {
    pub fn new(service: Service, redact_pii: bool, sink: LogSink) -> Self {
        Self {
            service,
            redact_pii,
            sink,
        }
    }

    fn render(&self, mut fields: Map<String, Value>, level: &tracing::Level) -> Vec<u8> {
        let mut line = Map::new();
        line.insert(
            "ts".into(),
            Utc::now()
                .to_rfc3339_opts(SecondsFormat::Millis, true)
                .into(),
        );
        line.insert("level".into(), level.as_str().to_ascii_lowercase().into());
        line.insert("service".into(), self.service.as_str().into());
        line.insert(
            "message".into(),
            fields.remove("message").unwrap_or_default(),
        );
        line.insert(
            "trace_id".into(),
            fields.remove("trace_id").unwrap_or(Value::Null),
        );
        line.extend(fields);
        if self.redact_pii {
            for (key, value) in line.iter_mut() {
                if let Value::String(text) = value
                    && !NOT_PII.contains(&key.as_str())
                    && let std::borrow::Cow::Owned(masked) = redact(text)
                {
                    *text = masked;
                }
            }
        }
        let mut bytes = serde_json::to_vec(&Value::Object(line)).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// The fields recorded on a span, kept in its extensions for the events inside it.
pub(crate) struct SpanFields(pub(crate) Map<String, Value>);

#[derive(Default)]
pub(crate) struct JsonVisitor(pub(crate) Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut chain = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        self.0.insert(field.name().into(), chain.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

impl<S> Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = JsonVisitor::default();
        attrs.record(&mut visitor);
        span.extensions_mut().insert(SpanFields(visitor.0));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = JsonVisitor::default();
        values.record(&mut visitor);
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            fields.0.extend(visitor.0);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<SpanFields>() {
                    fields.extend(span_fields.0.clone());
                }
            }
        }
        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);
        fields.extend(visitor.0);
        self.sink
            .write_line(&self.render(fields, event.metadata().level()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn lines_carry_spec_fields_span_fields_and_masked_pii() -> Result<(), Box<dyn std::error::Error>>
    {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let layer = JsonLogLayer::new(Service::Worker, true, LogSink::Buffer(buffer.clone()));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", trace_id = "abc", route = "/v1/leads");
            let _guard = span.enter();
            tracing::warn!(
                tenant_id = "org_1",
                phone = "+15551237890",
                "lead jane@example.com called"
            );
        });
        let text = String::from_utf8(buffer.lock().map_err(|_| "poisoned")?.clone())?;
        let line: Value = serde_json::from_str(text.trim())?;
        assert_eq!(line["level"], "warn");
        assert_eq!(line["service"], "worker");
        assert_eq!(line["trace_id"], "abc");
        assert_eq!(line["route"], "/v1/leads");
        assert_eq!(line["tenant_id"], "org_1");
        assert_eq!(line["phone"], "+1******7890");
        assert_eq!(line["message"], "lead j***@example.com called");
        assert!(line["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')));
        Ok(())
    }
}
