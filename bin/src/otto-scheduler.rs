//! `otto-scheduler`: enqueues periodic jobs, each once per slot however many copies run.

use clap::Parser;
use otto_runtime::telemetry::Service;
use otto_runtime::{AppContext, startup};
use otto_scheduler::Scheduler;

#[derive(Parser)]
#[command(
    name = "otto-scheduler",
    version,
    about = "Otto's periodic-job scheduler."
)]
struct Cli {}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _cli = Cli::parse();
    let config = startup::config_or_exit();
    let schedule = match otto::schedule(&config) {
        Ok(schedule) => schedule,
        Err(err) => {
            eprintln!("otto-scheduler: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = startup::init(Service::Scheduler, &config);
    let ctx = match AppContext::build(config, shutdown).await {
        Ok(ctx) => ctx,
        Err(err) => {
            eprintln!("otto-scheduler: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let relay = ctx.spawn_outbox_relay();
    Scheduler::new(ctx.clone(), schedule).run().await;
    let _ = relay.await;
    otto_runtime::telemetry::otlp::shutdown();
    std::process::ExitCode::SUCCESS
}
