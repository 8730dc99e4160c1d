use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use metrics_exporter_prometheus::PrometheusHandle;
use otto_domain::Role;
use otto_integrations::clerk::ClerkClient;
use otto_runtime::AppContext;

use crate::auth::jwt::TokenVerifier;
use crate::cors::OriginPatterns;
use crate::rate_limit::RateLimiter;
use crate::realtime::hub::Hub;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub ctx: AppContext,
    pub metrics: Option<PrometheusHandle>,
    pub verifier: Arc<TokenVerifier>,
    pub origins: OriginPatterns,
    pub rate_limiter: Arc<RateLimiter>,
    pub hub: Arc<Hub>,
    /// (tenant, user, role) already provisioned by this process.
    pub known_members: Arc<Mutex<HashSet<(String, String, Role)>>>,
    /// Clerk's Backend API, when `CLERK_SECRET_KEY` is set (role changes).
    pub clerk: Option<ClerkClient>,
    /// Google Calendar sync, when Google and `ENCRYPTION_KEY` are configured.
    pub calendar: Option<otto_service::calendar::CalendarSync>,
    /// The receptionist's engine (with the model of `LLM_BASE_URL` when set).
    pub assistant: otto_service::assistant::Assistant,
    /// UWC RAG (Ask Otto), when configured and `ENABLE_UWC_RAG` is on.
    pub rag: Option<Arc<otto_integrations::uwc::UwcClient>>,
}
