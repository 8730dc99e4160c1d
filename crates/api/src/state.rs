use metrics_exporter_prometheus::PrometheusHandle;
use otto_runtime::AppContext;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub ctx: AppContext,
    pub metrics: Option<PrometheusHandle>,
}
