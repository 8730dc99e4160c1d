//! The composition root: what runs in which process. `otto-api` serves HTTP and, in embedded
//! mode (no `REDIS_URL`), also runs the worker and the scheduler in-process; `otto-worker` and
//! `otto-scheduler` run one each. The binaries and the integration tests build the API through
//! [`api`], so both wire it the same way.

pub mod demo;
pub mod mock_uwc;

use otto_api::Application;
use otto_runtime::context::StartError;
use otto_runtime::{AppContext, Config, Mode};
use otto_scheduler::{Schedule, Scheduler, configured_schedule};
use otto_worker::{Worker, WorkerSettings};
use tokio::task::JoinHandle;

/// The API server on `ctx`, with the in-process worker and scheduler when embedded.
///
/// # Errors
/// When the address cannot be bound, the auth configuration is unusable or
/// `SCHEDULE_OVERRIDES` is invalid.
pub fn api(ctx: AppContext) -> Result<Application, StartError> {
    api_with_routes(ctx, |_| {})
}

/// As [`api`], with `extra` routes mounted beside Otto's (tests exercise guards with them).
///
/// # Errors
/// As [`api`].
pub fn api_with_routes(
    ctx: AppContext,
    extra: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
) -> Result<Application, StartError> {
    let embedded = match ctx.config.mode() {
        Mode::Embedded => Some(schedule(&ctx.config)?),
        Mode::Distributed => None,
    };
    let mut app = Application::build_with_routes(ctx.clone(), extra)?;
    if let Some(schedule) = embedded {
        app.run_alongside(embedded_loops(&ctx, schedule));
    }
    Ok(app)
}

/// The configured schedule; `otto-scheduler` and embedded `otto-api` refuse a bad
/// `SCHEDULE_OVERRIDES` with the same error.
///
/// # Errors
/// An unknown schedule name or an unreadable expression.
pub fn schedule(config: &Config) -> Result<Vec<Schedule>, StartError> {
    configured_schedule(config).map_err(StartError::Config)
}

/// Every job Otto runs, for `config`.
pub fn registry(config: &Config) -> otto_worker::Registry {
    otto_worker::jobs::registry(config)
}

fn embedded_loops(ctx: &AppContext, schedule: Vec<Schedule>) -> Vec<JoinHandle<()>> {
    let worker = Worker::new(
        ctx.clone(),
        registry(&ctx.config),
        WorkerSettings::from_context(ctx),
    );
    vec![
        tokio::spawn(worker.run()),
        tokio::spawn(Scheduler::new(ctx.clone(), schedule).run()),
    ]
}
