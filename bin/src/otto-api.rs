//! `otto-api`: the HTTP server (and, with nothing configured, the whole product).

use clap::{Parser, Subcommand};
use otto_api::Application;
use otto_runtime::context::StartError;
use otto_runtime::telemetry::Service;
use otto_runtime::{AppContext, startup};

#[derive(Parser)]
#[command(
    name = "otto-api",
    version,
    about = "Otto's HTTP API. With nothing configured it runs the whole product on SQLite."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP on HOST:PORT (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut config = startup::config_or_exit();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let shutdown = startup::init(Service::Api, &config);
            serve(config, shutdown).await
        }
        Command::Migrate => {
            config.migrate_on_start = true;
            let shutdown = startup::init(Service::Api, &config);
            AppContext::build(config, shutdown).await.map(|_| {
                tracing::info!("migrations applied");
            })
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "otto-api failed");
            eprintln!("otto-api: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(
    config: otto_runtime::Config,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), StartError> {
    let ctx = AppContext::build(config, shutdown).await?;
    let app = Application::build_with_context(ctx)?;
    let ctx = app.context();
    tracing::info!(
        address = %format!("{}:{}", ctx.config.host, app.port()),
        mode = ?ctx.config.mode(),
        environment = ctx.config.environment.as_str(),
        "otto-api listening"
    );
    app.run_until_stopped().await?;
    tracing::info!("otto-api stopped");
    Ok(())
}
