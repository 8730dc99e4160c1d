//! Error reporting to Sentry (`SENTRY_DSN`, SPEC section 5): `ERROR` tracing events become Sentry
//! events tagged with the request's `trace_id` (also `request_id`: the `X-Request-Id` Otto
//! answers), `tenant_id` and `user_id` from the spans around them; `WARN` and `INFO` events
//! become breadcrumbs; panics are reported by the SDK's panic integration. Every string of an
//! outgoing event is scrubbed like the logs (`super::redact`): no phone number, e-mail address or
//! bearer token leaves the process.

use std::sync::OnceLock;
use std::time::Duration;

use sentry::integrations::tracing::BreadcrumbLayer;
use sentry::protocol::Event as SentryEvent;
use serde_json::Value;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::json_layer::{JsonVisitor, SpanFields};
use super::redact::redact;

/// The span fields that become tags.
const TAGS: [&str; 3] = ["trace_id", "tenant_id", "user_id"];

static CLIENT: OnceLock<sentry::ClientInitGuard> = OnceLock::new();

/// Starts the Sentry client for this process (once). False when `dsn` does not parse.
pub fn init(dsn: &str, environment: &str, service: &str) -> bool {
    let Ok(dsn) = dsn.parse::<sentry::types::Dsn>() else {
        eprintln!("SENTRY_DSN is not a DSN: error reporting disabled");
        return false;
    };
    let service = service.to_owned();
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn);
    options.environment = Some(environment.to_owned().into());
    options.release = Some(concat!("otto@", env!("CARGO_PKG_VERSION")).into());
    options.send_default_pii = false;
    options.before_send = Some(std::sync::Arc::new(move |event| {
        let mut event = scrubbed(event)?;
        event.tags.insert("service".to_owned(), service.clone());
        Some(event)
    }));
    options.before_breadcrumb = Some(std::sync::Arc::new(|crumb| {
        let mut crumb = crumb;
        crumb.message = crumb.message.map(|m| redact(&m).into_owned());
        Some(crumb)
    }));
    CLIENT.get_or_init(|| sentry::init(options));
    true
}

/// Whether a client was started.
pub fn enabled() -> bool {
    CLIENT.get().is_some()
}

/// Sends what is queued (at shutdown).
pub fn flush() {
    if let Some(client) = sentry::Hub::current().client() {
        client.flush(Some(Duration::from_secs(2)));
    }
}

/// Every string of the event, redacted; the event dropped if it cannot be rebuilt.
fn scrubbed(event: SentryEvent<'static>) -> Option<SentryEvent<'static>> {
    let mut value = serde_json::to_value(&event).ok()?;
    scrub(&mut value);
    serde_json::from_value(value).ok()
}

fn scrub(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(clean) = redact(text) {
                *text = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => map.values_mut().for_each(scrub),
        _ => {}
    }
}

/// `ERROR` events as Sentry events, with the spans' tags.
struct ErrorEvents;

impl<S> Layer<S> for ErrorEvents
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        let mut fields = JsonVisitor::default();
        event.record(&mut fields);
        let mut fields = fields.0;
        let message = fields
            .remove("message")
            .and_then(|m| m.as_str().map(str::to_owned));
        let mut sentry_event = SentryEvent {
            level: sentry::Level::Error,
            logger: Some(event.metadata().target().to_owned()),
            message,
            extra: fields.into_iter().collect(),
            ..Default::default()
        };
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<SpanFields>() else {
                    continue;
                };
                for tag in TAGS {
                    if let Some(value) = fields.0.get(tag).and_then(Value::as_str) {
                        sentry_event.tags.insert(tag.to_owned(), value.to_owned());
                    }
                }
            }
        }
        if let Some(trace) = sentry_event.tags.get("trace_id").cloned() {
            sentry_event.tags.insert("request_id".to_owned(), trace);
        }
        sentry::capture_event(sentry_event);
    }
}

/// The layers: breadcrumbs from `WARN`/`INFO`, events from `ERROR`. Inert without a client.
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let breadcrumbs = BreadcrumbLayer::new().with_filter(filter_fn(|m| {
        matches!(*m.level(), Level::WARN | Level::INFO)
    }));
    breadcrumbs.and_then(ErrorEvents)
}
