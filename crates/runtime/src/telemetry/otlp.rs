//! Optional OpenTelemetry export: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, every span is exported
//! over OTLP/HTTP (protobuf) to `{endpoint}/v1/traces`, named after the process's service
//! (`OTEL_SERVICE_NAME_API`, `OTEL_SERVICE_NAME_WORKER`). A request that carries a W3C
//! `traceparent` becomes a child of the caller's span.

use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// A provider exporting to `endpoint` (e.g. `http://collector:4318`) in batches.
///
/// # Errors
/// When the exporter cannot be built.
pub fn provider(
    endpoint: &str,
    service_name: &str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("otto"))
}

/// Keeps the process's provider so [`shutdown`] can flush it.
pub(crate) fn keep(provider: SdkTracerProvider) {
    let _ = PROVIDER.set(provider);
}

/// Flushes and stops the exporter (end of `main`); a no-op without one.
pub fn shutdown() {
    super::errors::flush();
    if let Some(provider) = PROVIDER.get()
        && let Err(err) = provider.shutdown()
    {
        eprintln!("OpenTelemetry exporter did not shut down cleanly: {err}");
    }
}

/// Makes `span` a child of the remote span named by a W3C `traceparent` header.
pub fn follow_traceparent(span: &tracing::Span, traceparent: &str) {
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// A span recorded under the layer reaches an OTLP/HTTP collector as a protobuf POST.
    #[test]
    fn spans_are_exported_to_the_collector() -> Result<(), Box<dyn std::error::Error>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let collector = runtime.block_on(wiremock::MockServer::start());
        runtime.block_on(
            wiremock::Mock::given(wiremock::matchers::method("POST"))
                .and(wiremock::matchers::path("/v1/traces"))
                .and(wiremock::matchers::header(
                    "content-type",
                    "application/x-protobuf",
                ))
                .respond_with(wiremock::ResponseTemplate::new(200))
                .expect(1..)
                .mount(&collector),
        );
        let provider = provider(&collector.uri(), "otto-test")?;
        let subscriber = tracing_subscriber::registry().with(layer(&provider));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", route = "/health");
            follow_traceparent(
                &span,
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            );
            let _entered = span.enter();
            tracing::info!("inside");
        });
        provider.force_flush()?;
        let received = runtime
            .block_on(collector.received_requests())
            .unwrap_or_default();
        let body = received.first().map(|r| r.body.clone()).unwrap_or_default();
        // The protobuf carries the caller's trace id (raw bytes) and our service name.
        let trace_id = [
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ];
        assert!(
            body.windows(16).any(|w| w == trace_id),
            "exported span must continue the caller's trace"
        );
        assert!(
            body.windows(9).any(|w| w == b"otto-test"),
            "service name must be exported"
        );
        let _ = provider.shutdown();
        Ok(())
    }
}
