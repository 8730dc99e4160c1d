//! Logs: one JSON object per line with the fields of SPEC section 5, PII masked by default.

pub mod errors;
mod json_layer;
pub mod otlp;
pub mod redact;

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use json_layer::JsonLogLayer;

/// The `service` field of every log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Api,
    Worker,
    Scheduler,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Api => "api",
            Service::Worker => "worker",
            Service::Scheduler => "scheduler",
        }
    }
}

/// Where log lines go: stdout in the binaries, a buffer in tests.
#[derive(Clone)]
pub enum LogSink {
    Stdout,
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl LogSink {
    fn write_line(&self, line: &[u8]) {
        match self {
            LogSink::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(line);
            }
            LogSink::Buffer(buffer) => {
                if let Ok(mut buffer) = buffer.lock() {
                    buffer.extend_from_slice(line);
                }
            }
        }
    }
}

/// Where spans are exported, when they are.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    pub endpoint: String,
    pub service_name: String,
}

/// Installs the global subscriber: `level` is a `LOG_LEVEL` / `RUST_LOG`-style filter; with
/// `otlp`, spans are exported too. Returns false when a subscriber was already installed.
pub fn init(service: Service, level: &str, redact_pii: bool, otlp: Option<OtlpSettings>) -> bool {
    let filter = EnvFilter::try_new(format!("{level},sqlx=warn,sea_orm=warn,actix_server=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = otlp.and_then(|settings| {
        match otlp::provider(&settings.endpoint, &settings.service_name) {
            Ok(provider) => Some(provider),
            Err(err) => {
                eprintln!("OTLP export disabled: {err}");
                None
            }
        }
    });
    let export = provider.as_ref().map(otlp::layer);
    let reporting = errors::enabled().then(errors::layer);
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(JsonLogLayer::new(service, redact_pii, LogSink::Stdout))
        .with(export)
        .with(reporting)
        .try_init()
        .is_ok();
    if let Some(provider) = provider {
        otlp::keep(provider);
    }
    installed
}
