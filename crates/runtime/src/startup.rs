//! The first steps every binary takes: read configuration (or stop with one clear line), start
//! logging, and turn SIGTERM/SIGINT into the shutdown token.

use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::telemetry::{self, Service};

/// Reads configuration; on error prints it as one line on stderr and exits with status 2.
pub fn config_or_exit() -> Config {
    match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(2);
        }
    }
}

/// Starts JSON logging (and OTLP export when configured) for `service` and returns a token
/// cancelled on SIGTERM/SIGINT. Call [`crate::telemetry::otlp::shutdown`] before exiting.
pub fn init(service: Service, config: &Config) -> CancellationToken {
    install_crypto_provider();
    let otlp = config
        .telemetry
        .otel_endpoint
        .as_ref()
        .map(|endpoint| telemetry::OtlpSettings {
            endpoint: endpoint.clone(),
            service_name: match service {
                Service::Api => config.telemetry.service_name_api.clone(),
                Service::Worker => config.telemetry.service_name_worker.clone(),
                Service::Scheduler => format!("{}-scheduler", config.telemetry.service_name_worker),
            },
        });
    if let Some(dsn) = &config.telemetry.sentry_dsn {
        telemetry::errors::init(dsn, config.environment.as_str(), service.as_str());
    }
    telemetry::init(
        service,
        &config.telemetry.log_level,
        config.telemetry.redact_pii,
        otlp,
    );
    let token = CancellationToken::new();
    tokio::spawn(crate::shutdown::cancel_on_signal(token.clone()));
    if let (Some(port), Service::Worker | Service::Scheduler) =
        (config.telemetry.metrics_port, service)
    {
        let shutdown = token.clone();
        tokio::spawn(async move {
            if let Err(err) = crate::metrics_endpoint::serve(port, shutdown).await {
                tracing::error!(port, error = %err, "metrics endpoint unavailable");
            }
        });
    }
    token
}

/// Two rustls crypto providers are compiled in (ring through sqlx, aws-lc-rs through reqwest and
/// jsonwebtoken); rustls then refuses to pick one by itself, so the process picks aws-lc-rs.
pub fn install_crypto_provider() {
    // An error only means a provider is already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
