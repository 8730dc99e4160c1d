//! The process-wide Prometheus recorder. Histograms named `*_ms` get millisecond buckets.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const MS_BUCKETS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the recorder on first call and returns its handle (the same one afterwards).
/// `None` only if another recorder was installed by someone else.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_ms".to_owned()), &MS_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            // Histograms buffer raw samples until upkeep drains them; without a scraper they would
            // grow with traffic, so a thread drains them on a timer.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            register_baseline();
            Some(handle)
        })
        .clone()
}

/// Counters the alert rules divide or watch, exported at zero from the start: a rule over a
/// series that does not exist yet says nothing, and a renamed metric must fail the rules' test,
/// not wait for the first incident (`ops/prometheus/alerts.yml`).
fn register_baseline() {
    for name in [
        "webhook_processed_total",
        "webhook_failures_total",
        "ws_messages_sent_total",
        "ws_messages_dropped_total",
        "dashboard_cache_hits_total",
        "dashboard_cache_misses_total",
        "rate_limit_backend_errors_total",
        "worker_task_total",
        "webhook_duplicates_total",
        "asr_minutes_total",
        "sms_sent_total",
        "assistant_turns_total",
        "assistant_bookings_total",
        "llm_tokens_total",
    ] {
        metrics::counter!(name).absolute(0);
    }
    metrics::gauge!("ws_connections").set(0.0);
}
